#pragma once
// Tensor-core building blocks shared by the attention kernels (PTX, sm_80+): cp.async copies into
// shared memory, ldmatrix fragment loads and the m16n8k16 mma with fp32 accumulators. Builds for
// older GPUs (sm_75) compile them to a trap: the ops never launch these kernels there
// (kernel_choice.h, kTensorCoreArch).
//
// Fragment ownership (PTX m16n8k16): lane = 4 * g + t holds, of each 16x8 accumulator block,
// rows g and g + 8 at columns 2t and 2t + 1. Pair by pair this is also the A-operand layout,
// so a score tile can become the probabilities operand of the next product without leaving
// registers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define TROCR_TENSOR_CORE_PTX(...) __trap()
#else
#define TROCR_TENSOR_CORE_PTX(...) __VA_ARGS__
#endif

namespace trocr::cuda {

__device__ __forceinline__ uint32_t shared_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// 16 bytes global -> shared, or 16 zero bytes when !inside (the source is then not read).
__device__ __forceinline__ void copy_async_16(void* destination, const void* source, bool inside) {
  TROCR_TENSOR_CORE_PTX(asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(destination)),
               "l"(source), "r"(inside ? 16 : 0)));
}

__device__ __forceinline__ void commit_async() { TROCR_TENSOR_CORE_PTX(asm volatile("cp.async.commit_group;\n" ::)); }

// Waits until at most `Pending` committed groups of this thread are still in flight.
template <int Pending>
__device__ __forceinline__ void wait_async() {
  TROCR_TENSOR_CORE_PTX(asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending)));
}

__device__ __forceinline__ void load_matrix_x4(uint32_t (&r)[4], const void* address) {
  TROCR_TENSOR_CORE_PTX(asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(address))));
}

__device__ __forceinline__ void load_matrix_x4_transposed(uint32_t (&r)[4], const void* address) {
  TROCR_TENSOR_CORE_PTX(asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(address))));
}

// d += a (16x16, row) * b (16x8, col) for T = __half or __nv_bfloat16.
template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    TROCR_TENSOR_CORE_PTX(asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1)));
  } else {
    TROCR_TENSOR_CORE_PTX(asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1)));
  }
}

// Two floats as one register of two T (the low half is the first).
template <typename T>
__device__ __forceinline__ uint32_t pack(float low, float high) {
  uint32_t packed;
  if constexpr (std::is_same_v<T, __half>) {
    __half2 pair = __floats2half2_rn(low, high);
    packed = *reinterpret_cast<uint32_t*>(&pair);
  } else {
    __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
    packed = *reinterpret_cast<uint32_t*>(&pair);
  }
  return packed;
}

constexpr float kLog2e = 1.4426950408889634f;

// One key tile of an online softmax over a warp's rows g (index 0) and g + 8 (index 1). s holds
// the tile's raw scores, -inf where masked, as Blocks accumulator blocks of 8 keys; at least one
// key of every tile is unmasked. scale_log2 takes them to base 2 inside the exponent's FMA (one
// instruction per score instead of a multiply and a subtraction); the running maximum is kept
// scaled. Updates it and this lane's share of the running sum, packs exp2(s * scale - max) into
// A fragments p (16 keys each), and returns in alpha the factors the output accumulators must be
// scaled by.
template <typename T, int Blocks>
__device__ __forceinline__ void online_softmax(const float (&s)[Blocks][4], float scale_log2,
                                               float (&running_max)[2], float (&running_sum)[2],
                                               float (&alpha)[2], uint32_t (&p)[Blocks / 2][4]) {
  float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < Blocks; ++n) {
    tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
    tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffff, tile_max[h], 1));
    tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffff, tile_max[h], 2));
    const float new_max = fmaxf(running_max[h], tile_max[h] * scale_log2);  // the scale is positive
    alpha[h] = exp2f(running_max[h] - new_max);  // 0 on the first tile
    running_max[h] = new_max;
    running_sum[h] *= alpha[h];
  }
#pragma unroll
  for (int n = 0; n < Blocks; ++n) {
    const float p0 = exp2f(fmaf(s[n][0], scale_log2, -running_max[0]));
    const float p1 = exp2f(fmaf(s[n][1], scale_log2, -running_max[0]));
    const float p2 = exp2f(fmaf(s[n][2], scale_log2, -running_max[1]));
    const float p3 = exp2f(fmaf(s[n][3], scale_log2, -running_max[1]));
    running_sum[0] += p0 + p1;
    running_sum[1] += p2 + p3;
    p[n / 2][(n % 2) * 2 + 0] = pack<T>(p0, p1);
    p[n / 2][(n % 2) * 2 + 1] = pack<T>(p2, p3);
  }
}

// Output accumulators (Blocks blocks of 8 columns) times alpha, row by row.
template <int Blocks>
__device__ __forceinline__ void scale_rows(float (&output)[Blocks][4], const float (&alpha)[2]) {
#pragma unroll
  for (int n = 0; n < Blocks; ++n) {
    output[n][0] *= alpha[0], output[n][1] *= alpha[0];
    output[n][2] *= alpha[1], output[n][3] *= alpha[1];
  }
}

// An array as the only element of an array of one, for the one-row-tile forms below.
template <typename A>
__device__ __forceinline__ A (&as_one_tile(A& a))[1] {
  return *reinterpret_cast<A(*)[1]>(&a);
}

// output[r] += P[r] V for kRows row tiles of 16 (P as A fragments, one per 16 keys) over kColumns
// columns of the tile's rows v from first_column (read transposed). Each V fragment serves every
// row tile: with more row tiles per warp, fewer shared-memory reads per product.
template <typename T, int kRows, int kKeys, int kColumns, int kStride>
__device__ __forceinline__ void accumulate_values(const uint32_t (&p)[kRows][kKeys / 16][4], const T (*v)[kStride],
                                                  int first_column, float (&output)[kRows][kColumns / 8][4]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < kKeys / 16; ++j) {
#pragma unroll
    for (int n = 0; n < kColumns / 16; ++n) {
      uint32_t values[4];  // keys 16j + [0,8) and [8,16) of columns 16n + [0,8), then of 16n + [8,16)
      load_matrix_x4_transposed(values, &v[j * 16 + lane % 16][first_column + n * 16 + 8 * (lane / 16)]);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        mma<T>(output[r][2 * n], p[r][j], values[0], values[1]);
        mma<T>(output[r][2 * n + 1], p[r][j], values[2], values[3]);
      }
    }
  }
}

// One key tile of flash attention for a warp's kRows row tiles of 16 queries (A fragments q[r],
// kDim wide): S = Q K^T over the tile's kKeys keys (rows of k, in shared memory) with keys from
// `valid` on masked (full tiles skip the mask), the online softmax (scale_log2 as there), then
// output += P V (rows of v, read transposed). Each key and value fragment loaded serves all kRows
// row tiles.
template <typename T, int kRows, int kKeys, int kDim, int kStride>
__device__ __forceinline__ void attend_tile_rows(const uint32_t (&q)[kRows][kDim / 16][4], const T (*k)[kStride],
                                                 const T (*v)[kStride], int valid, float scale_log2,
                                                 float (&running_max)[kRows][2], float (&running_sum)[kRows][2],
                                                 float (&output)[kRows][kDim / 8][4]) {
  const int lane = threadIdx.x % 32, pair = lane % 4;
  float s[kRows][kKeys / 8][4];
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) s[r][n][0] = s[r][n][1] = s[r][n][2] = s[r][n][3] = 0.0f;
#pragma unroll
    for (int d = 0; d < kDim / 32; ++d) {
      uint32_t keys[4];  // dims 32d + [0,8), [8,16), [16,24), [24,32) of keys 8n..8n+7
      load_matrix_x4(keys, &k[n * 8 + lane % 8][d * 32 + 8 * (lane / 8)]);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        mma<T>(s[r][n], q[r][2 * d], keys[0], keys[1]);
        mma<T>(s[r][n], q[r][2 * d + 1], keys[2], keys[3]);
      }
    }
  }
  uint32_t p[kRows][kKeys / 16][4];
  const bool partial = valid < kKeys;  // uniform: the sequence's last tile
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (partial) {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[r][n][e] = n * 8 + 2 * pair + (e & 1) < valid ? s[r][n][e] : -INFINITY;
      }
    }
    float alpha[2];
    online_softmax<T>(s[r], scale_log2, running_max[r], running_sum[r], alpha, p[r]);
    scale_rows(output[r], alpha);
  }
  accumulate_values<T, kRows, kKeys, kDim, kStride>(p, v, 0, output);
}

// attend_tile_rows for one row tile.
template <typename T, int kKeys, int kDim, int kStride>
__device__ __forceinline__ void attend_tile(const uint32_t (&q)[kDim / 16][4], const T (*k)[kStride],
                                            const T (*v)[kStride], int valid, float scale_log2,
                                            float (&running_max)[2], float (&running_sum)[2],
                                            float (&output)[kDim / 8][4]) {
  attend_tile_rows<T, 1, kKeys, kDim, kStride>(as_one_tile(q), k, v, valid, scale_log2, as_one_tile(running_max),
                                               as_one_tile(running_sum), as_one_tile(output));
}

// A row's running sum is spread over the 4 lanes of its group.
__device__ __forceinline__ float group_sum(float value) {
  value += __shfl_xor_sync(0xffffffff, value, 1);
  return value + __shfl_xor_sync(0xffffffff, value, 2);
}

}  // namespace trocr::cuda

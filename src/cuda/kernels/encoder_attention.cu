// Fused (flash-style) multi-head attention for the encoder, fp16/bf16 with head_dim 64: reads
// Q, K and V straight from the fused QKV projection and writes the merged heads, so the score
// matrix never reaches global memory and the head split/merge copies disappear.
//
// A block of 4 warps takes 64 queries of one (image, head); each warp owns 16 of them. Keys go
// by in tiles of 64, copied with cp.async into a double buffer so that the next tile loads
// while this one is computed. Both products are mma.sync m16n8k16 (fp32 accumulation) with
// operands from ldmatrix, and the scores never leave registers: the accumulator layout of
// S = Q K^T is, pair by pair, the A-operand layout of P V, so the online softmax (fp32, base 2)
// runs on the accumulators and P is packed to T in place. An earlier WMMA version had to pass
// every tile through shared memory for the softmax and only tied the GEMM path.
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/mma_fragments.cuh"

namespace trocr::cuda {
namespace {

constexpr int kDim = kEncoderAttentionHeadDim;
constexpr int kTile = 64;         // queries per block and keys per step
constexpr int kWarps = 4;         // 16 queries each
constexpr int kThreads = kWarps * 32;
constexpr int kStride = kDim + 8;  // padded shared rows: ldmatrix's 8 row reads hit distinct banks
constexpr int kChunks = kDim * 2 / 16;  // 16-byte pieces per row

template <typename T>
struct EncoderAttentionShared {
  T q[kTile][kStride];
  T k[2][kTile][kStride];
  T v[2][kTile][kStride];
};

// Starts the copy of rows [first, first + kTile) of one head's slice into tile; rows past the
// sequence are zero-filled, so that their keys and values are harmless.
template <typename T>
__device__ void load_tile_async(const T* slice, int64_t row_stride, int sequence, int first, T (*tile)[kStride]) {
  for (int i = threadIdx.x; i < kTile * kChunks; i += kThreads) {
    const int row = i / kChunks, column = (i % kChunks) * 8;
    const bool inside = first + row < sequence;
    copy_async_16(&tile[row][column], slice + int64_t(inside ? first + row : 0) * row_stride + column, inside);
  }
  commit_async();
}

// Lane 4g + t owns rows g and g + 8 of its warp's 16 queries (see mma_fragments.cuh).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    encoder_attention_kernel(const T* qkv, int sequence, int heads, float scale_log2, T* out) {
  extern __shared__ __align__(128) unsigned char raw[];
  auto& shared = *reinterpret_cast<EncoderAttentionShared<T>*>(raw);
  const int width = heads * kDim;
  const int64_t row_stride = 3 * int64_t(width);
  const int head = blockIdx.y % heads, image = blockIdx.y / heads;
  const int first_query = blockIdx.x * kTile;
  const T* queries = qkv + int64_t(image) * sequence * row_stride + head * kDim;
  const T* keys = queries + width;
  const T* values = queries + 2 * width;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pair = lane % 4;

  load_tile_async(queries, row_stride, sequence, first_query, shared.q);
  load_tile_async(keys, row_stride, sequence, 0, shared.k[0]);
  load_tile_async(values, row_stride, sequence, 0, shared.v[0]);

  float output[kDim / 8][4];
#pragma unroll
  for (int n = 0; n < kDim / 8; ++n) output[n][0] = output[n][1] = output[n][2] = output[n][3] = 0.0f;
  float running_max[2] = {-INFINITY, -INFINITY}, running_sum[2] = {0.0f, 0.0f};
  uint32_t q[kDim / 16][4];

  const int tiles = (sequence + kTile - 1) / kTile;
  for (int tile = 0; tile < tiles; ++tile) {
    const int buffer = tile % 2;
    if (tile + 1 < tiles) {
      load_tile_async(keys, row_stride, sequence, (tile + 1) * kTile, shared.k[1 - buffer]);
      load_tile_async(values, row_stride, sequence, (tile + 1) * kTile, shared.v[1 - buffer]);
      wait_async<2>();
    } else {
      wait_async<0>();
    }
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int d = 0; d < kDim / 16; ++d) {
        load_matrix_x4(q[d], &shared.q[warp * 16 + lane % 16][d * 16 + 8 * (lane / 16)]);
      }
    }

    attend_tile<T, kTile, kDim, kStride>(q, shared.k[buffer], shared.v[buffer], sequence - tile * kTile, scale_log2,
                                         running_max, running_sum, output);
    __syncthreads();  // the next iteration's copies overwrite this buffer
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float inverse = 1.0f / group_sum(running_sum[h]);
    const int query = first_query + warp * 16 + group + 8 * h;
    if (query >= sequence) continue;
    T* destination = out + (int64_t(image) * sequence + query) * width + head * kDim + 2 * pair;
#pragma unroll
    for (int n = 0; n < kDim / 8; ++n) {
      *reinterpret_cast<uint32_t*>(destination + n * 8) =
          pack<T>(output[n][2 * h] * inverse, output[n][2 * h + 1] * inverse);
    }
  }
}

}  // namespace

template <typename T>
bool encoder_attention(const T* qkv, int batch, int sequence, int heads, int head_dim, float scale, T* out,
                       cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    return false;  // fp32 keeps the GEMM path (the tensor-core shapes here are 16-bit)
  } else {
    if (head_dim != kDim || batch <= 0 || sequence <= 0) return false;
    // 16-byte copies need 16-byte-aligned rows.
    if (reinterpret_cast<uintptr_t>(qkv) % 16 != 0 || (3 * heads * kDim * sizeof(T)) % 16 != 0) return false;
    const size_t shared_bytes = sizeof(EncoderAttentionShared<T>);
    static_assert(sizeof(EncoderAttentionShared<T>) <= 227 * 1024, "fits an H100 block's shared memory");
    TROCR_CUDA_CHECK(cudaFuncSetAttribute(encoder_attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          int(shared_bytes)));
    const dim3 grid((sequence + kTile - 1) / kTile, unsigned(batch) * heads);
    encoder_attention_kernel<T><<<grid, kThreads, shared_bytes, stream>>>(qkv, sequence, heads, scale * kLog2e, out);
    TROCR_CUDA_CHECK(cudaGetLastError());
    return true;
  }
}

template bool encoder_attention<float>(const float*, int, int, int, int, float, float*, cudaStream_t);
template bool encoder_attention<__half>(const __half*, int, int, int, int, float, __half*, cudaStream_t);
template bool encoder_attention<__nv_bfloat16>(const __nv_bfloat16*, int, int, int, int, float, __nv_bfloat16*,
                                               cudaStream_t);

}  // namespace trocr::cuda

// Fused (flash-style) multi-head attention for the encoder, fp16/bf16 with head_dim 64: reads
// Q, K and V straight from the fused QKV projection and writes the merged heads, so the score
// matrix never reaches global memory and the head split/merge copies disappear.
//
// A block of 4 warps takes 128 queries of one (image, head); each warp owns 32 of them as two
// 16-row mma tiles, so that every key and value fragment it loads from shared memory serves two
// products (with one tile per warp, shared-memory reads took as long as the mma). Batches too
// small to fill the GPU with such blocks take 64 queries per block, one tile per warp. Keys go by in
// tiles of 64, copied with cp.async into a double buffer so that the next tile loads while this
// one is computed. Both products are mma.sync m16n8k16 (fp32 accumulation) with operands from
// ldmatrix, and the scores never leave registers: the accumulator layout of S = Q K^T is, pair by
// pair, the A-operand layout of P V, so the online softmax (fp32, base 2) runs on the
// accumulators and P is packed to T in place. An earlier WMMA version had to pass every tile
// through shared memory for the softmax and only tied the GEMM path.
// Sequences rarely fill the last tiles (ViT's 577 tokens are 9 x 64 + 1): a warp computes only
// the row tiles that hold queries, and a last key tile of at most 16 keys is computed as 16.
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernel_choice.h"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/mma_fragments.cuh"

namespace trocr::cuda {
namespace {

constexpr int kDim = kEncoderAttentionHeadDim;
constexpr int kKeys = 64;       // keys per step
constexpr int kTailKeys = 16;   // the shortest key tile computed
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// Queries per block with RowTiles 16-query mma tiles per warp.
template <int RowTiles>
constexpr int kQueries = kWarps * 16 * RowTiles;
constexpr int kStride = kDim + 8;  // padded shared rows: ldmatrix's 8 row reads hit distinct banks
constexpr int kChunks = kDim * 2 / 16;  // 16-byte pieces per row

template <typename T, int RowTiles>
struct EncoderAttentionShared {
  T q[kQueries<RowTiles>][kStride];
  T k[2][kKeys][kStride];
  T v[2][kKeys][kStride];
};

// Starts the copy of rows [first, first + kRows) of one head's slice into tile; rows past the
// sequence are zero-filled, so that their keys and values are harmless.
template <int kRows, typename T>
__device__ void load_tile_async(const T* slice, int64_t row_stride, int sequence, int first, T (*tile)[kStride]) {
  for (int i = threadIdx.x; i < kRows * kChunks; i += kThreads) {
    const int row = i / kChunks, column = (i % kChunks) * 8;
    const bool inside = first + row < sequence;
    copy_async_16(&tile[row][column], slice + int64_t(inside ? first + row : 0) * row_stride + column, inside);
  }
  commit_async();
}

// One key tile for Rows row tiles of a warp: a last tile of at most kTailKeys keys is computed as
// kTailKeys, not kKeys (577 = 9 x 64 + 1 leaves a tile of one key).
template <typename T, int Rows>
__device__ __forceinline__ void attend_keys(const uint32_t (&q)[Rows][kDim / 16][4], const T (*k)[kStride],
                                            const T (*v)[kStride], int valid, float scale_log2,
                                            float (&running_max)[Rows][2], float (&running_sum)[Rows][2],
                                            float (&output)[Rows][kDim / 8][4]) {
  if (valid <= kTailKeys) {
    attend_tile_rows<T, Rows, kTailKeys, kDim, kStride>(q, k, v, valid, scale_log2, running_max, running_sum, output);
  } else {
    attend_tile_rows<T, Rows, kKeys, kDim, kStride>(q, k, v, valid, scale_log2, running_max, running_sum, output);
  }
}

// Lane 4g + t owns rows g and g + 8 of each of its warp's row tiles (see mma_fragments.cuh).
template <typename T, int kRowTiles>
__global__ void __launch_bounds__(kThreads)
    encoder_attention_kernel(const T* qkv, int sequence, int heads, float scale_log2, T* out) {
  constexpr int kWarpQueries = 16 * kRowTiles;
  extern __shared__ __align__(128) unsigned char raw[];
  auto& shared = *reinterpret_cast<EncoderAttentionShared<T, kRowTiles>*>(raw);
  const int width = heads * kDim;
  const int64_t row_stride = 3 * int64_t(width);
  const int head = blockIdx.y % heads, image = blockIdx.y / heads;
  const int first_query = blockIdx.x * kQueries<kRowTiles>;
  const T* queries = qkv + int64_t(image) * sequence * row_stride + head * kDim;
  const T* keys = queries + width;
  const T* values = queries + 2 * width;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pair = lane % 4;
  const int warp_first = first_query + warp * kWarpQueries;
  const int row_tiles = min(kRowTiles, max(0, (sequence - warp_first + 15) / 16));  // holding queries

  load_tile_async<kQueries<kRowTiles>>(queries, row_stride, sequence, first_query, shared.q);
  load_tile_async<kKeys>(keys, row_stride, sequence, 0, shared.k[0]);
  load_tile_async<kKeys>(values, row_stride, sequence, 0, shared.v[0]);

  float output[kRowTiles][kDim / 8][4];
  float running_max[kRowTiles][2], running_sum[kRowTiles][2];
#pragma unroll
  for (int r = 0; r < kRowTiles; ++r) {
#pragma unroll
    for (int n = 0; n < kDim / 8; ++n) output[r][n][0] = output[r][n][1] = output[r][n][2] = output[r][n][3] = 0.0f;
    running_max[r][0] = running_max[r][1] = -INFINITY;
    running_sum[r][0] = running_sum[r][1] = 0.0f;
  }
  uint32_t q[kRowTiles][kDim / 16][4];

  const int tiles = (sequence + kKeys - 1) / kKeys;
  for (int tile = 0; tile < tiles; ++tile) {
    const int buffer = tile % 2;
    if (tile + 1 < tiles) {
      load_tile_async<kKeys>(keys, row_stride, sequence, (tile + 1) * kKeys, shared.k[1 - buffer]);
      load_tile_async<kKeys>(values, row_stride, sequence, (tile + 1) * kKeys, shared.v[1 - buffer]);
      wait_async<2>();
    } else {
      wait_async<0>();
    }
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int r = 0; r < kRowTiles; ++r) {
#pragma unroll
        for (int d = 0; d < kDim / 16; ++d) {
          load_matrix_x4(q[r][d], &shared.q[warp * kWarpQueries + r * 16 + lane % 16][d * 16 + 8 * (lane / 16)]);
        }
      }
    }

    // Uniform per warp: which row tiles hold queries, and how many keys the tile has.
    const int valid = sequence - tile * kKeys;
    const T(*k)[kStride] = shared.k[buffer];
    const T(*v)[kStride] = shared.v[buffer];
    if (row_tiles == kRowTiles) {
      attend_keys<T, kRowTiles>(q, k, v, valid, scale_log2, running_max, running_sum, output);
    } else if (kRowTiles > 1 && row_tiles == 1) {
      attend_keys<T, 1>(as_one_tile(q[0]), k, v, valid, scale_log2, as_one_tile(running_max[0]),
                        as_one_tile(running_sum[0]), as_one_tile(output[0]));
    }
    __syncthreads();  // the next iteration's copies overwrite this buffer
  }

#pragma unroll
  for (int r = 0; r < kRowTiles; ++r) {
    if (r >= row_tiles) break;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float inverse = 1.0f / group_sum(running_sum[r][h]);
      const int query = warp_first + r * 16 + group + 8 * h;
      if (query >= sequence) continue;
      T* destination = out + (int64_t(image) * sequence + query) * width + head * kDim + 2 * pair;
#pragma unroll
      for (int n = 0; n < kDim / 8; ++n) {
        *reinterpret_cast<uint32_t*>(destination + n * 8) =
            pack<T>(output[r][n][2 * h] * inverse, output[r][n][2 * h + 1] * inverse);
      }
    }
  }
}

template <typename T, int RowTiles>
void launch(const T* qkv, int batch, int sequence, int heads, float scale, T* out, cudaStream_t stream) {
  constexpr size_t kSharedBytes = sizeof(EncoderAttentionShared<T, RowTiles>);
  static_assert(kSharedBytes <= 227 * 1024, "fits an H100 block's shared memory");
  TROCR_CUDA_CHECK(cudaFuncSetAttribute(encoder_attention_kernel<T, RowTiles>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSharedBytes)));
  const dim3 grid((sequence + kQueries<RowTiles> - 1) / kQueries<RowTiles>, unsigned(batch) * heads);
  encoder_attention_kernel<T, RowTiles>
      <<<grid, kThreads, kSharedBytes, stream>>>(qkv, sequence, heads, scale * kLog2e, out);
}

}  // namespace

template <typename T>
bool encoder_attention(const T* qkv, int batch, int sequence, int heads, int head_dim, float scale, T* out,
                       cudaStream_t stream, int row_tiles) {
  if constexpr (std::is_same_v<T, float>) {
    return false;  // fp32 keeps the GEMM path (the tensor-core shapes here are 16-bit)
  } else {
    if (head_dim != kDim || batch <= 0 || sequence <= 0 || row_tiles < 0 || row_tiles > 2) return false;
    // 16-byte copies need 16-byte-aligned rows.
    if (reinterpret_cast<uintptr_t>(qkv) % 16 != 0 || (3 * heads * kDim * sizeof(T)) % 16 != 0) return false;
    // Two row tiles per warp halve the shared-memory reads per product, but also the blocks: below
    // two per SM (a batch of 1-4 ViT images on an H200) one tile per warp keeps the GPU filled.
    if (row_tiles == 0) {
      const int64_t wide_blocks = int64_t((sequence + kQueries<2> - 1) / kQueries<2>) * batch * heads;
      row_tiles = wide_blocks >= 2 * multiprocessor_count() ? 2 : 1;
    }
    if (row_tiles == 2) {
      launch<T, 2>(qkv, batch, sequence, heads, scale, out, stream);
    } else {
      launch<T, 1>(qkv, batch, sequence, heads, scale, out, stream);
    }
    TROCR_CUDA_CHECK(cudaGetLastError());
    return true;
  }
}

template bool encoder_attention<float>(const float*, int, int, int, int, float, float*, cudaStream_t, int);
template bool encoder_attention<__half>(const __half*, int, int, int, int, float, __half*, cudaStream_t, int);
template bool encoder_attention<__nv_bfloat16>(const __nv_bfloat16*, int, int, int, int, float, __nv_bfloat16*,
                                               cudaStream_t, int);

}  // namespace trocr::cuda

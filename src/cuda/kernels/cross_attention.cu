// Decoder cross-attention on tensor cores, for fp16/bf16 with head_dim 32 or 64. The rows of a step
// come in groups that read the same image (the beams of one image; single rows for greedy), and
// a block serves one (group, head, key split): its 4 warps walk the split's keys in tiles of 32,
// each warp streaming its own tiles through a cp.async double buffer, with all of the group's
// rows as the 16 rows of one mma. A group's keys and values are so read once per step, not once
// per beam, and at large batches the kernel streams the per-layer K/V at memory speed instead of
// issuing a block per (row, head, 32 keys) as decode_attention does.
// The warps' partial softmax states are merged in shared memory; with several key splits
// (small batches, to fill the GPU) the splits' states go to scratch for the combine kernel.
#include <algorithm>
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernel_choice.h"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/mma_fragments.cuh"

namespace trocr::cuda {
namespace {

constexpr int kTile = 32;  // keys per warp step
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

template <typename T, int kDim>
union CrossAttentionShared {
  static constexpr int kStride = kDim + 8;  // padded shared rows: conflict-free ldmatrix
  struct {
    T k[2][kTile][kStride];
    T v[2][kTile][kStride];
  } tiles[kWarps];
  struct {  // after the key loop: each warp's softmax state for the group's rows
    float output[kWarps][kMaxCrossGroupRows][kDim];
    float max[kWarps][kMaxCrossGroupRows];
    float sum[kWarps][kMaxCrossGroupRows];
  } merge;
};

// One warp copies keys and values [first, first + kTile) of its head (zeros past `end`).
template <int kDim, typename T, int kStride>
__device__ void load_warp_tile(const T* keys, const T* values, int64_t row_stride, int first, int end,
                               T (*k)[kStride], T (*v)[kStride]) {
  constexpr int kChunks = kDim * 2 / 16;  // 16-byte pieces per row
  const int lane = threadIdx.x % 32;
  for (int i = lane; i < kTile * kChunks; i += 32) {
    const int row = i / kChunks, column = (i % kChunks) * 8;
    const bool inside = first + row < end;
    const int64_t offset = int64_t(inside ? first + row : 0) * row_stride + column;
    copy_async_16(&k[row][column], keys + offset, inside);
    copy_async_16(&v[row][column], values + offset, inside);
  }
  commit_async();
}

template <typename T, int kDim>
__global__ void __launch_bounds__(kThreads)
    cross_attention_kernel(CrossAttentionParams params, const T* queries, const T* keys, const T* values,
                           T* out, int keys_per_split) {
  extern __shared__ __align__(128) unsigned char raw[];
  auto& shared = *reinterpret_cast<CrossAttentionShared<T, kDim>*>(raw);
  const int group_index = blockIdx.x, head = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
  const int first_row = params.group_starts[group_index];
  const int row_count = params.group_starts[group_index + 1] - first_row;
  const int64_t table = int64_t(params.row_images[first_row]) * params.image_stride + head * kDim;
  const int begin = split * keys_per_split, end = min(params.keys, begin + keys_per_split);
  const int tiles = (end - begin + kTile - 1) / kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pair = lane % 4;
  auto& mine = shared.tiles[warp];

  // The groups and the K/V table were written before the step began (see dependent_launch.cuh):
  // the first tiles load while the previous kernel, which computes the queries, finishes.
  start_next_kernel();
  if (warp < tiles) {
    load_warp_tile<kDim>(keys + table, values + table, params.row_stride, begin + warp * kTile, end, mine.k[0], mine.v[0]);
  }
  wait_for_previous_kernel();
  // The group's queries as A fragments (rows past the group are zero).
  uint32_t q[kDim / 16][4];
#pragma unroll
  for (int d = 0; d < kDim / 16; ++d) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = group + 8 * (i & 1), column = d * 16 + 2 * pair + 8 * (i >> 1);
      q[d][i] = row < row_count ? *reinterpret_cast<const uint32_t*>(
                                      queries + int64_t(first_row + row) * params.q_stride + head * kDim + column)
                                : 0u;
    }
  }

  float output[kDim / 8][4];
#pragma unroll
  for (int n = 0; n < kDim / 8; ++n) output[n][0] = output[n][1] = output[n][2] = output[n][3] = 0.0f;
  float running_max[2] = {-INFINITY, -INFINITY}, running_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = params.scale * kLog2e;

  for (int tile = warp, step = 0; tile < tiles; tile += kWarps, ++step) {
    const int buffer = step % 2;
    if (tile + kWarps < tiles) {
      load_warp_tile<kDim>(keys + table, values + table, params.row_stride, begin + (tile + kWarps) * kTile, end,
                     mine.k[1 - buffer], mine.v[1 - buffer]);
      wait_async<1>();
    } else {
      wait_async<0>();
    }
    __syncwarp();

    attend_tile<T, kTile, kDim, CrossAttentionShared<T, kDim>::kStride>(
        q, mine.k[buffer], mine.v[buffer], end - (begin + tile * kTile), scale_log2, running_max, running_sum, output);
    __syncwarp();  // the next step's copies overwrite this buffer
  }

  // Merge the 4 warps' states (a warp without tiles has max -inf and contributes nothing).
  running_sum[0] = group_sum(running_sum[0]);
  running_sum[1] = group_sum(running_sum[1]);
  __syncthreads();  // tiles are dead; their memory becomes the merge area
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = group + 8 * h;
    if (row >= row_count) continue;
#pragma unroll
    for (int n = 0; n < kDim / 8; ++n) {
      shared.merge.output[warp][row][n * 8 + 2 * pair] = output[n][2 * h];
      shared.merge.output[warp][row][n * 8 + 2 * pair + 1] = output[n][2 * h + 1];
    }
    if (pair == 0) shared.merge.max[warp][row] = running_max[h], shared.merge.sum[warp][row] = running_sum[h];
  }
  __syncthreads();
  const int width = params.heads * kDim;
  for (int i = threadIdx.x; i < row_count * kDim; i += kThreads) {
    const int row = i / kDim, d = i % kDim;
    float largest = -INFINITY;
    for (int w = 0; w < kWarps; ++w) largest = fmaxf(largest, shared.merge.max[w][row]);
    float total = 0.0f, value = 0.0f;
    if (largest != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float factor = exp2f(shared.merge.max[w][row] - largest);
        total += shared.merge.sum[w][row] * factor;
        value += shared.merge.output[w][row][d] * factor;
      }
    }
    const int global_row = first_row + row;
    if (splits == 1) {
      out[int64_t(global_row) * width + head * kDim + d] = from_float<T>(value / total);
    } else {
      // combine_attention_chunks' layout: kDim values, then the max (natural log) and the sum.
      float* partial = params.scratch + ((int64_t(global_row) * params.heads + head) * splits + split) * (kDim + 2);
      partial[d] = value;
      if (d == 0) partial[kDim] = largest / kLog2e, partial[kDim + 1] = total;
    }
  }
}

template <typename T, int kDim>
void launch_cross_attention(const CrossAttentionParams& params, const T* queries, const T* keys, const T* values,
                            T* out, cudaStream_t stream) {
  // Enough blocks to fill the GPU: split the keys while every warp keeps at least one tile.
  const int processors = multiprocessor_count();
  const int tiles = (params.keys + kTile - 1) / kTile;
  const int pairs = params.groups * params.heads;
  const int wanted = (2 * processors + pairs - 1) / pairs;
  const int splits = std::max(1, std::min(wanted, tiles / kWarps));
  const int keys_per_split = (tiles + splits - 1) / splits * kTile;
  const int used_splits = (params.keys + keys_per_split - 1) / keys_per_split;
  const size_t shared_bytes = sizeof(CrossAttentionShared<T, kDim>);
  TROCR_CUDA_CHECK(cudaFuncSetAttribute(cross_attention_kernel<T, kDim>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  const dim3 grid(params.groups, params.heads, used_splits);
  launch_dependent(cross_attention_kernel<T, kDim>, grid, kThreads, shared_bytes, stream, params, queries, keys, values,
                   out, keys_per_split);
  if (used_splits > 1) {
    combine_attention_chunks<T>(params.scratch, params.rows, params.heads, kDim, used_splits, out, stream);
  }
}

}  // namespace

template <typename T>
bool cross_attention(const CrossAttentionParams& params, const T* queries, const T* keys, const T* values, T* out,
                     cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    return false;  // fp32 keeps decode_attention (the tensor-core shapes here are 16-bit)
  } else {
    if ((params.head_dim != 32 && params.head_dim != 64) || params.groups <= 0 || params.keys <= 0) return false;
    const auto misaligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 != 0; };
    if (misaligned(keys) || misaligned(values) || (params.row_stride * sizeof(T)) % 16 != 0 ||
        (params.image_stride * sizeof(T)) % 16 != 0) {
      return false;
    }
    if (params.head_dim == 32) {
      launch_cross_attention<T, 32>(params, queries, keys, values, out, stream);
    } else {
      launch_cross_attention<T, 64>(params, queries, keys, values, out, stream);
    }
    return true;
  }
}

#define INSTANTIATE(T) \
  template bool cross_attention<T>(const CrossAttentionParams&, const T*, const T*, const T*, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

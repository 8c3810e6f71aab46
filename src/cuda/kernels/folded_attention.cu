// Cross-attention over the encoder states themselves (the folded form of greedy decoding): an
// image's rows are its M <= 16 folded queries q' (one per head, each as wide as the states), and
//   mix[m] = sum_t softmax_t(scale * q'[m] . e_t) e_t.
// Flash-style in one pass, so the states are read once per layer and step: a block of 8 warps
// takes one (image, key split) and walks the states in tiles of 16 through a ring of three
// cp.async stages, two tiles loading while one is computed. Two blocks are resident per SM, so
// that one block's barriers overlap the other's work (one 16-warp block per SM serialized its
// tiles through its barriers: 4-14% slower decoding at 64-256 images). The state width is split
// over the warps: each computes its slice's share of the 16 x 16 scores on tensor cores (the
// queries' fragments stay in registers); a thread per score sums the shares and takes the tile's
// step of the fp32 online softmax, once for the block, leaving P in shared memory; each warp
// accumulates P times its own slice of the tile. With several key splits (small batches, to fill
// the GPU) the splits' states go to scratch for combine_attention_chunks.
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

constexpr int kKeys = 16;   // states per tile
constexpr int kStages = 3;  // tiles in shared memory: kStages - 1 load while one is computed
constexpr int kRows = kMaxFoldedHeads;  // one mma tile of queries (an image's heads)
static_assert(kRows == kKeys, "the queries are staged through a state stage");
// Warps per block, at every width: each takes a slice of the width, a multiple of 16 columns. Two
// blocks are resident per SM (~110 KB of shared memory each at width 1024), so that two barrier
// chains overlap.
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kBlocksPerSm = 2;

template <typename T, int kWidth>
struct FoldedShared {
  static constexpr int kStride = kWidth + 8;  // padded shared rows: conflict-free ldmatrix
  // The last stage holds the queries until their fragments are in registers: the loop's first
  // barrier comes before its first load into that stage.
  T states[kStages][kKeys][kStride];
  float shares[kWarps][kRows][kKeys + 4];  // each warp's share of a tile's scores (padded rows)
  T probabilities[kRows][kKeys + 8];       // the tile's P, the A fragment of P V (rows of 48 bytes)
  float alphas[kRows];                     // what each row's accumulators are scaled by
  float row_maxes[kRows], row_sums[kRows];  // the softmax's state at the end
};

// Starts the copy of states [first, first + kKeys) into tile (zeros past `end`).
template <int kWidth, typename T, int kStride>
__device__ void load_states(const T* states, int first, int end, T (*tile)[kStride]) {
  constexpr int kChunks = kWidth * 2 / 16;  // 16-byte pieces per row
  for (int i = threadIdx.x; i < kKeys * kChunks; i += blockDim.x) {
    const int row = i / kChunks, column = (i % kChunks) * 8;
    const bool inside = first + row < end;
    copy_async_16(&tile[row][column], states + int64_t(inside ? first + row : 0) * kWidth + column, inside);
  }
  commit_async();
}

template <typename T, int kWidth>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    folded_attention_kernel(FoldedAttentionParams params, const T* queries, const T* states, T* mix,
                            int keys_per_split) {
  using Shared = FoldedShared<T, kWidth>;
  constexpr int kStride = Shared::kStride;
  constexpr int kSlice = kWidth / kWarps;  // state columns per warp
  static_assert(kSlice % 16 == 0, "a warp's slice is whole mma tiles");
  static_assert(kRows * kKeys == kThreads && kKeys == 16, "a thread per score; P is one A fragment");
  extern __shared__ __align__(128) unsigned char raw[];
  auto& shared = *reinterpret_cast<Shared*>(raw);
  const int image = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  const int begin = split * keys_per_split, end = min(params.keys, begin + keys_per_split);
  const int tiles = (end - begin + kKeys - 1) / kKeys;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pair = lane % 4;
  const int first_column = warp * kSlice;
  // Set before the step began, like the states: readable before the previous kernel ends.
  const int slot = params.image_slots != nullptr ? params.image_slots[image] : image;
  const T* image_states = states + int64_t(slot) * params.keys * kWidth;

  // The states were written before the step began (see dependent_launch.cuh): the first tiles
  // load while the previous kernel, which computes the queries, finishes. Every stage commits a
  // group, empty past the last tile, so that wait_async counts the same in every iteration.
  start_next_kernel();
#pragma unroll
  for (int stage = 0; stage + 1 < kStages; ++stage) {
    if (stage < tiles) {
      load_states<kWidth>(image_states, begin + stage * kKeys, end, shared.states[stage]);
    } else {
      commit_async();
    }
  }
  wait_for_previous_kernel();
  for (int i = threadIdx.x; i < kRows * kWidth / 8; i += kThreads) {
    const int row = i / (kWidth / 8), column = (i % (kWidth / 8)) * 8;
    uint4 value = make_uint4(0, 0, 0, 0);  // rows past M: zero queries, harmless
    if (row < params.rows) {
      value = *reinterpret_cast<const uint4*>(queries + (int64_t(image) * params.rows + row) * kWidth + column);
    }
    *reinterpret_cast<uint4*>(&shared.states[kStages - 1][row][column]) = value;
  }
  __syncthreads();
  uint32_t q[kSlice / 16][4];
#pragma unroll
  for (int d = 0; d < kSlice / 16; ++d) {
    load_matrix_x4(q[d], &shared.states[kStages - 1][lane % 16][first_column + d * 16 + 8 * (lane / 16)]);
  }

  float output[kSlice / 8][4];
#pragma unroll
  for (int n = 0; n < kSlice / 8; ++n) output[n][0] = output[n][1] = output[n][2] = output[n][3] = 0.0f;
  // This thread's score of every tile: (row, key). A row's 16 scores are a half-warp, which keeps
  // the row's online softmax state.
  const int score_row = threadIdx.x / kKeys, score_key = threadIdx.x % kKeys;
  float running_max = -INFINITY, running_sum = 0.0f;
  const float scale_log2 = params.scale * kLog2e;

  for (int tile = 0; tile < tiles; ++tile) {
    // Groups committed so far: kStages - 1 + tile; this tile's is among the first tile + 1.
    wait_async<kStages - 2>();
    __syncthreads();  // every warp is done with tile - 1: its stage and its P
    const int ahead = tile + kStages - 1;  // into the stage tile - 1 used
    if (ahead < tiles) {
      load_states<kWidth>(image_states, begin + ahead * kKeys, end, shared.states[ahead % kStages]);
    } else {
      commit_async();
    }
    const T(*tile_states)[kStride] = shared.states[tile % kStages];

    // This warp's slice of S = Q' E^T: ldmatrix x4 gives two 8-key blocks of 16 columns.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int n = 0; n < kKeys / 8; n += 2) {
#pragma unroll
      for (int d = 0; d < kSlice / 16; ++d) {
        uint32_t keys[4];
        load_matrix_x4(keys, &tile_states[n * 8 + lane % 8 + 8 * (lane / 16)][first_column + d * 16 + 8 * ((lane / 8) % 2)]);
        mma<T>(s[n], q[d], keys[0], keys[1]);
        mma<T>(s[n + 1], q[d], keys[2], keys[3]);
      }
    }
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      *reinterpret_cast<float2*>(&shared.shares[warp][group][n * 8 + 2 * pair]) = make_float2(s[n][0], s[n][1]);
      *reinterpret_cast<float2*>(&shared.shares[warp][group + 8][n * 8 + 2 * pair]) = make_float2(s[n][2], s[n][3]);
    }
    __syncthreads();
    // A thread per score sums the shares and takes the tile's step of the online softmax, once
    // for the block (every warp used to repeat it on the whole tile); the running maximum is kept
    // scaled to base 2, as in online_softmax.
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) total += shared.shares[w][score_row][score_key];
    if (score_key >= end - (begin + tile * kKeys)) total = -INFINITY;  // past the split's last key
    float tile_max = total;
#pragma unroll
    for (int offset = kKeys / 2; offset > 0; offset /= 2) {
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, offset));
    }
    const float new_max = fmaxf(running_max, tile_max * scale_log2);  // a tile has a key: finite
    const float alpha = exp2f(running_max - new_max);                // 0 on the first tile
    running_max = new_max;
    const float probability = exp2f(fmaf(total, scale_log2, -new_max));
    float tile_sum = probability;
#pragma unroll
    for (int offset = kKeys / 2; offset > 0; offset /= 2) tile_sum += __shfl_xor_sync(0xffffffff, tile_sum, offset);
    running_sum = running_sum * alpha + tile_sum;
    shared.probabilities[score_row][score_key] = from_float<T>(probability);
    if (score_key == 0) shared.alphas[score_row] = alpha;
    // Once the maxima settle, most tiles leave every row's scale at 1: the rescale is skipped.
    const bool rescale = __syncthreads_or(alpha != 1.0f);
    uint32_t p[kKeys / 16][4];
    load_matrix_x4(p[0], &shared.probabilities[lane % 16][8 * (lane / 16)]);
    if (rescale) scale_rows(output, {shared.alphas[group], shared.alphas[group + 8]});
    accumulate_values<T, 1, kKeys, kSlice, kStride>(as_one_tile(p), tile_states, first_column, as_one_tile(output));
  }
  if (score_key == 0) shared.row_maxes[score_row] = running_max, shared.row_sums[score_row] = running_sum;
  __syncthreads();

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = group + 8 * h;
    const float total = shared.row_sums[row];
    if (row >= params.rows) continue;
    const int64_t global_row = int64_t(image) * params.rows + row;
    if (splits == 1) {
      T* destination = mix + global_row * kWidth + first_column + 2 * pair;
#pragma unroll
      for (int n = 0; n < kSlice / 8; ++n) {
        *reinterpret_cast<uint32_t*>(destination + n * 8) = pack<T>(output[n][2 * h] / total, output[n][2 * h + 1] / total);
      }
    } else {
      // combine_attention_chunks' layout: kWidth values, then the max (natural log) and the sum.
      float* partial = params.scratch + (global_row * splits + split) * (kWidth + 2);
#pragma unroll
      for (int n = 0; n < kSlice / 8; ++n) {
        partial[first_column + n * 8 + 2 * pair] = output[n][2 * h];
        partial[first_column + n * 8 + 2 * pair + 1] = output[n][2 * h + 1];
      }
      if (warp == 0 && pair == 0) partial[kWidth] = shared.row_maxes[row] / kLog2e, partial[kWidth + 1] = total;
    }
  }
}

template <typename T, int kWidth>
void launch_folded_attention(const FoldedAttentionParams& params, const T* queries, const T* states, T* mix,
                             cudaStream_t stream) {
  const int splits = folded_attention_splits(params.images, params.keys);
  const int tiles = (params.keys + kKeys - 1) / kKeys;
  const int keys_per_split = (tiles + splits - 1) / splits * kKeys;
  const int used_splits = (params.keys + keys_per_split - 1) / keys_per_split;
  const size_t shared_bytes = sizeof(FoldedShared<T, kWidth>);
  // Two blocks per SM: 228 KB of shared memory an H100/H200 SM, 1 KB of it reserved per block.
  static_assert(kBlocksPerSm * (sizeof(FoldedShared<T, 1024>) + 1024) <= 228 * 1024, "two blocks fit an SM");
  TROCR_CUDA_CHECK(cudaFuncSetAttribute(folded_attention_kernel<T, kWidth>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)));
  TROCR_CUDA_CHECK(cudaFuncSetAttribute(folded_attention_kernel<T, kWidth>,
                                        cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
  launch_dependent(folded_attention_kernel<T, kWidth>, dim3(params.images, used_splits), kThreads,
                   shared_bytes, stream, params, queries, states, mix, keys_per_split);
  if (used_splits > 1) {
    combine_attention_chunks<T>(params.scratch, params.images, params.rows, kWidth, used_splits, mix, stream);
  }
}

}  // namespace

int folded_attention_splits(int images, int keys) {
  // Splits only where they fill more SMs: a split pays a combine pass (at 128 images on 132 SMs,
  // two splits cost 20 us of combining for a wave the GPU had anyway).
  const int processors = multiprocessor_count();
  const int tiles = (keys + kKeys - 1) / kKeys;
  return std::max(1, std::min({processors / images, tiles, kMaxFoldedSplits}));
}

template <typename T>
bool folded_attention(const FoldedAttentionParams& params, const T* queries, const T* states, T* mix,
                      cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    return false;  // fp32 keeps the GEMM path (the tensor-core shapes here are 16-bit)
  } else {
    if (params.rows > kRows || params.rows <= 0 || params.images <= 0 || params.keys <= 0) return false;
    const auto misaligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 != 0; };
    if (misaligned(queries) || misaligned(states) || misaligned(mix)) return false;
    switch (params.width) {
      case 256: launch_folded_attention<T, 256>(params, queries, states, mix, stream); return true;
      case 384: launch_folded_attention<T, 384>(params, queries, states, mix, stream); return true;
      case 512: launch_folded_attention<T, 512>(params, queries, states, mix, stream); return true;
      case 768: launch_folded_attention<T, 768>(params, queries, states, mix, stream); return true;
      case 1024: launch_folded_attention<T, 1024>(params, queries, states, mix, stream); return true;
      default: return false;
    }
  }
}

#define INSTANTIATE(T) \
  template bool folded_attention<T>(const FoldedAttentionParams&, const T*, const T*, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

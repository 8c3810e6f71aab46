// A whole post-LN decoder layer in one launch, for small decoders at a few rows (#16): one
// thread-block cluster runs the layer's stages with a cluster barrier between them instead of a
// kernel boundary. At batch 1 a separate-kernel layer is ~9 launches of ~2-3 us, each mostly fixed
// cost around a little work (docs/CUDA_ENGINE.md); a small decoder's layer (d_model 256: ~1.8 MB
// of fp16 weights) streams through 16 SMs in a few microseconds.
//
// Stages (CTA c of C owns a 1/C slice of each product's output columns):
//   1. Q/K/V of the input rows; K and V go into the cache at each row's position
//   2. self-attention, a warp per (row, head)           5. cross-attention, a CTA per (group, head)
//   3. self-attention output -> delta                   6. cross-attention output -> delta
//   4. n1 = LN(input + delta) (every CTA, all rows),    7. n2 = LN(n1 + delta), FFN1 + activation
//      the cross-attention query                        8. FFN2 -> delta; 9. out = LN(n2 + delta)
// What a stage's latency is made of decides the shape. The first version passed its
// intermediates through L2 and walked values one load at a time (~120 us a layer); the second
// kept each product's weights in registers across a barrier with every loop unrolled over 16 rows,
// 680 KB of code that the SM fetched anew each launch (~150 us; ncu: warps waiting for
// instructions and for each other). So: every intermediate a product writes is stored into every
// CTA's shared memory (distributed shared memory) and a stage reads only local shared memory; a
// product's weight slice is copied into shared memory (cp.async) before the barrier that precedes
// it; loops over rows and columns are plain loops, so that the code stays small.
// Rounding follows the separate kernels: every product's output in T, LayerNorm in fp32 over
// float(residual) + float(delta), softmax in fp32, probabilities rounded to T before the
// cross-attention's values (as the grouped tensor-core kernel does).
#include <cooperative_groups.h>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/mma_fragments.cuh"

namespace trocr::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxRows = kMaxFusedLayerRows;
constexpr int kMaxHeadDim = 64;
constexpr int kMaxWidth = 1024;
constexpr int kKeyTile = 32;
// Shared memory is sized for this many CTAs (the portable cluster size; 16 need half as much).
constexpr int kSizingCtas = 8;
static_assert(kMaxRows == 16, "the column reduction folds 16 rows over a warp");
static_assert(kMaxRows >= kWarps, "the query area holds a head per warp or per row");

// Byte offsets of the shared arrays (the same in every CTA of the cluster: remote stores use them).
struct SharedLayout {
  size_t input, normed1, normed2, queries, context, delta, hidden, merge, heads, indices, weights, total;
};

__host__ __device__ inline size_t round_to_16(size_t bytes) { return (bytes + 15) / 16 * 16; }

template <typename T>
__host__ __device__ SharedLayout shared_layout(int rows, int width, int ffn) {
  const size_t row_bytes = round_to_16(size_t(rows) * width * sizeof(T));
  SharedLayout layout{};
  layout.input = 0;
  layout.normed1 = layout.input + row_bytes;
  layout.normed2 = layout.normed1 + row_bytes;
  layout.queries = layout.normed2 + row_bytes;
  layout.context = layout.queries + row_bytes;
  layout.delta = layout.context + row_bytes;
  layout.hidden = layout.delta + row_bytes;
  layout.merge = layout.hidden + round_to_16(size_t(rows) * ffn * sizeof(T));
  layout.heads = layout.merge + round_to_16(size_t(kWarps) * kMaxRows * (kMaxHeadDim + 2) * sizeof(float));
  layout.indices = layout.heads + round_to_16(size_t(kMaxRows) * kMaxHeadDim * sizeof(float));
  layout.weights = layout.indices + round_to_16(size_t(4 * kMaxRows + 1) * sizeof(int));
  // The largest slice of a product's weights a CTA stages: [n / CTAs, k] of (3w, w), (ffn, w), (w, ffn).
  const auto slice_bytes = [](int n, int k) { return size_t((n + kSizingCtas - 1) / kSizingCtas) * k * sizeof(T); };
  size_t weights = slice_bytes(3 * width, width);
  weights = weights > slice_bytes(ffn, width) ? weights : slice_bytes(ffn, width);
  weights = weights > slice_bytes(width, ffn) ? weights : slice_bytes(width, ffn);
  layout.total = layout.weights + round_to_16(weights);
  return layout;
}

// A step's small per-row tables, read once into shared memory.
struct RowIndices {
  int* slots;      // cache slot
  int* positions;  // position in the cache
  int* images;
  int* group_starts;
};

// [begin, end) of n split into `parts` near-equal slices.
__device__ __forceinline__ int2 slice(int n, int part, int parts) {
  return make_int2(int(int64_t(n) * part / parts), int(int64_t(n) * (part + 1) / parts));
}

// Stores value at index of `local` in every CTA of the cluster (distributed shared memory); the
// warp's lanes share the stores when the whole warp holds the value.
template <typename T>
__device__ __forceinline__ void broadcast(cg::cluster_group& cluster, int ctas, T* local, int index, T value) {
  for (int rank = 0; rank < ctas; ++rank) cluster.map_shared_rank(local, rank)[index] = value;
}
template <typename T>
__device__ __forceinline__ void broadcast_from_warp(cg::cluster_group& cluster, int ctas, T* local, int index,
                                                    T value) {
  const int lane = threadIdx.x % 32;
  if (lane < ctas) cluster.map_shared_rank(local, lane)[index] = value;
}

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
  return value;
}

// A product y = x W^T + b over this CTA's columns. load() copies the CTA's slice of W into shared
// memory asynchronously (call it before the barrier that precedes the product: weights do not
// depend on it); run() waits for it, then computes a column per warp, row by row, and calls
// epilogue(row, column, value) on every lane of the warp, which all hold the value.
template <typename T>
struct ColumnProduct {
  static constexpr int kVector = 16 / sizeof(T);
  const T* w;
  const T* bias;
  int k;
  int2 columns;

  __device__ void load(T* staged) const {
    const int pieces = (columns.y - columns.x) * k / kVector;
    const T* from = w + int64_t(columns.x) * k;
    for (int i = threadIdx.x; i < pieces; i += kThreads) copy_async_16(staged + i * kVector, from + i * kVector, true);
    commit_async();
  }

  template <typename Epilogue>
  __device__ void run(const T* staged, const T* x, int rows, Epilogue epilogue) const {
    constexpr int kRowBlock = 4;  // rows computed together: independent chains for the latency
    wait_async<0>();
    __syncthreads();
    const int lane = threadIdx.x % 32;
    for (int c = threadIdx.x / 32; c < columns.y - columns.x; c += kWarps) {
      const T* weight = staged + c * k;
      const float b = bias != nullptr ? to_float(bias[columns.x + c]) : 0.0f;
      for (int first = 0; first < rows; first += kRowBlock) {
        float sums[kRowBlock] = {};
        for (int base = lane * kVector; base < k; base += 32 * kVector) {
          const uint4 packed_w = *reinterpret_cast<const uint4*>(weight + base);
          const T* wv = reinterpret_cast<const T*>(&packed_w);
#pragma unroll
          for (int i = 0; i < kRowBlock; ++i) {
            if (first + i < rows) {
              const uint4 packed_x = *reinterpret_cast<const uint4*>(x + (first + i) * k + base);
              const T* xv = reinterpret_cast<const T*>(&packed_x);
#pragma unroll
              for (int v = 0; v < kVector; ++v) sums[i] += to_float(wv[v]) * to_float(xv[v]);
            }
          }
        }
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) {
#pragma unroll
          for (int i = 0; i < kRowBlock; ++i) sums[i] += __shfl_xor_sync(0xffffffff, sums[i], offset);
        }
#pragma unroll
        for (int i = 0; i < kRowBlock; ++i) {
          if (first + i < rows) epilogue(first + i, columns.x + c, sums[i] + b);
        }
      }
    }
    __syncthreads();  // the staged slice is free for the next product's copy
  }
};

// out[row] = LayerNorm(float(residual[row]) + float(delta[row])) for the rows first, first +
// step, ..., a warp per row, the row in registers (one round of loads).
template <typename T>
__device__ void layer_norm_rows(const T* residual, const T* delta, const float* gamma, const float* beta, int rows,
                                int width, float eps, int first, int step, T* out) {
  constexpr int kPerLane = kMaxWidth / 32;
  const int lane = threadIdx.x % 32;
  for (int row = first; row < rows; row += step) {
    float values[kPerLane];
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int c = lane + 32 * i;
      values[i] = c < width ? to_float(residual[row * width + c]) + to_float(delta[row * width + c]) : 0.0f;
      sum += values[i];
    }
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    const float mean = sum / width;
    float squares = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      if (lane + 32 * i < width) squares += (values[i] - mean) * (values[i] - mean);
    }
    for (int offset = 16; offset > 0; offset /= 2) squares += __shfl_xor_sync(0xffffffff, squares, offset);
    const float inverse = rsqrtf(squares / width + eps);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int c = lane + 32 * i;
      if (c < width) out[row * width + c] = from_float<T>((values[i] - mean) * inverse * gamma[c] + beta[c]);
    }
  }
}

// A key row of `dim` (<= 64, a multiple of 16 bytes) values into fp32 registers, 16 bytes at a time.
template <typename T>
__device__ __forceinline__ void load_head_row(const T* row, int dim, float (&out)[kMaxHeadDim]) {
  constexpr int kVector = 16 / sizeof(T);
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; d += kVector) {
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (d < dim) packed = __ldcg(reinterpret_cast<const uint4*>(row + d));
    const T* values = reinterpret_cast<const T*>(&packed);
#pragma unroll
    for (int v = 0; v < kVector; ++v) out[d + v] = d < dim ? to_float(values[v]) : 0.0f;
  }
}

// A tile's value rows for the lane's output dimensions (lane, lane + 32), 8 keys per round of
// loads: values[u][i] is key (first + u)'s dimension lane + 32 i.
constexpr int kValueRound = 8;
template <typename T>
__device__ __forceinline__ void load_value_round(const T* values, int64_t stride, int first, int count, int dim,
                                                 float (&out)[kValueRound][kMaxHeadDim / 32]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int u = 0; u < kValueRound; ++u) {
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) {
      const int d = lane + 32 * i;
      out[u][i] = first + u < count && d < dim ? to_float(__ldcg(values + int64_t(first + u) * stride + d)) : 0.0f;
    }
  }
}

template <typename T>
struct LayerContext {
  const FusedLayerParams<T>& p;
  cg::cluster_group& cluster;
  int ctas;
  RowIndices index;
  T *queries, *context;
};

// Self-attention of one (row, head) over its cache (keys 0 .. position), a warp: lanes take keys
// in tiles of 32 (online softmax), then output dimensions. fp32 throughout, as decode_attention.
template <typename T>
__device__ void self_attention_unit(const LayerContext<T>& layer, int row, int head, float* query) {
  const FusedLayerParams<T>& p = layer.p;
  const int lane = threadIdx.x % 32, dim = p.width / p.heads;
  const int keys = layer.index.positions[row] + 1;
  const int64_t table = int64_t(layer.index.slots[row]) * p.slot_stride + head * dim;
  for (int d = lane; d < kMaxHeadDim; d += 32) {
    query[d] = d < dim ? to_float(layer.queries[row * p.width + head * dim + d]) * p.scale : 0.0f;
  }
  __syncwarp();
  float running_max = -INFINITY, partial_sum = 0.0f, out[kMaxHeadDim / 32] = {};
  for (int tile = 0; tile < keys; tile += kKeyTile) {
    const int j = tile + lane, count = min(kKeyTile, keys - tile);
    float score = -INFINITY;
    if (j < keys) {
      float key[kMaxHeadDim];
      load_head_row(p.cache_keys + table + int64_t(j) * p.width, dim, key);
      score = 0.0f;
#pragma unroll
      for (int d = 0; d < kMaxHeadDim; ++d) score += query[d] * key[d];
    }
    float tile_max = score;
    for (int offset = 16; offset > 0; offset /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, offset));
    const float new_max = fmaxf(running_max, tile_max);
    const float correction = expf(running_max - new_max);
    const float weight = j < keys ? expf(score - new_max) : 0.0f;
    partial_sum = partial_sum * correction + weight;
    running_max = new_max;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) out[i] *= correction;
    const T* values = p.cache_values + table + int64_t(tile) * p.width;
    for (int first = 0; first < count; first += kValueRound) {
      float v[kValueRound][kMaxHeadDim / 32];
      load_value_round(values, p.width, first, count, dim, v);
#pragma unroll
      for (int u = 0; u < kValueRound; ++u) {
        const float w = __shfl_sync(0xffffffff, weight, (first + u) & 31);
#pragma unroll
        for (int i = 0; i < kMaxHeadDim / 32; ++i) out[i] += w * v[u][i];  // v is 0 past count
      }
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) partial_sum += __shfl_xor_sync(0xffffffff, partial_sum, offset);
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) {
    const int d = lane + 32 * i;
    if (d < dim) {
      broadcast(layer.cluster, layer.ctas, layer.context, row * p.width + head * dim + d,
                from_float<T>(out[i] / partial_sum));
    }
  }
  __syncwarp();
}

// Cross-attention of one group (consecutive rows of one image) and head: the CTA's warps split
// the image's keys; a lane scores one key against every row of the group (online softmax per
// row), each warp keeping its rows' states in shared memory (state: [kWarps][16][dim + 2] floats:
// the unnormalised output, the max, the sum); then the warps' states merge.
template <typename T>
__device__ void cross_attention_unit(const LayerContext<T>& layer, int group, int head, float* queries, float* state) {
  const FusedLayerParams<T>& p = layer.p;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, dim = p.width / p.heads, stride = dim + 2;
  const int first_row = layer.index.group_starts[group], count = layer.index.group_starts[group + 1] - first_row;
  const int64_t table = int64_t(layer.index.images[first_row]) * p.image_stride + head * dim;
  for (int i = threadIdx.x; i < count * kMaxHeadDim; i += kThreads) {
    const int r = i / kMaxHeadDim, d = i % kMaxHeadDim;
    queries[i] = d < dim ? to_float(layer.queries[(first_row + r) * p.width + head * dim + d]) * p.scale : 0.0f;
  }
  float* mine = state + warp * kMaxRows * stride;
  for (int i = lane; i < count * stride; i += 32) mine[i] = i % stride == dim ? -INFINITY : 0.0f;
  __syncthreads();
  const int2 range = slice(p.keys, warp, kWarps);
  for (int tile = range.x; tile < range.y; tile += kKeyTile) {
    const int j = tile + lane, keys_here = min(kKeyTile, range.y - tile);
    const bool inside = j < range.y;
    float key[kMaxHeadDim];
    load_head_row(p.cross_keys + table + int64_t(inside ? j : range.x) * p.key_stride, dim, key);
    float v[kKeyTile / kValueRound][kValueRound][kMaxHeadDim / 32];
    const T* values = p.cross_values + table + int64_t(tile) * p.key_stride;
#pragma unroll
    for (int round = 0; round < kKeyTile / kValueRound; ++round) {
      load_value_round(values, p.key_stride, round * kValueRound, keys_here, dim, v[round]);
    }
    for (int r = 0; r < count; ++r) {
      float* row = mine + r * stride;
      float score = 0.0f;
#pragma unroll
      for (int d = 0; d < kMaxHeadDim; ++d) score += queries[r * kMaxHeadDim + d] * key[d];
      score = inside ? score : -INFINITY;
      float tile_max = score;
      for (int offset = 16; offset > 0; offset /= 2) {
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, offset));
      }
      const float running_max = row[dim], new_max = fmaxf(running_max, tile_max);
      const float correction = expf(running_max - new_max);
      const float weight = inside ? expf(score - new_max) : 0.0f;
      const float rounded = to_float(from_float<T>(weight));
      float out[kMaxHeadDim / 32];
#pragma unroll
      for (int i = 0; i < kMaxHeadDim / 32; ++i) out[i] = lane + 32 * i < dim ? row[lane + 32 * i] * correction : 0.0f;
#pragma unroll
      for (int round = 0; round < kKeyTile / kValueRound; ++round) {
#pragma unroll
        for (int u = 0; u < kValueRound; ++u) {
          const float w = __shfl_sync(0xffffffff, rounded, round * kValueRound + u);
#pragma unroll
          for (int i = 0; i < kMaxHeadDim / 32; ++i) out[i] += w * v[round][u][i];  // v is 0 past the tile
        }
      }
      const float sum = warp_sum(weight);
      __syncwarp();
#pragma unroll
      for (int i = 0; i < kMaxHeadDim / 32; ++i) {
        if (lane + 32 * i < dim) row[lane + 32 * i] = out[i];
      }
      if (lane == 0) row[dim] = new_max, row[dim + 1] = row[dim + 1] * correction + sum;
      __syncwarp();
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < count * dim; i += kThreads) {
    const int r = i / dim, d = i % dim;
    float largest = -INFINITY;
    for (int w = 0; w < kWarps; ++w) largest = fmaxf(largest, state[(w * kMaxRows + r) * stride + dim]);
    float total = 0.0f, value = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float* merged = state + (w * kMaxRows + r) * stride;
      if (merged[dim] == -INFINITY) continue;  // a warp without keys
      const float factor = expf(merged[dim] - largest);
      total += merged[dim + 1] * factor;
      value += merged[d] * factor;
    }
    broadcast(layer.cluster, layer.ctas, layer.context, (first_row + r) * p.width + head * dim + d,
              from_float<T>(value / total));
  }
  __syncthreads();  // queries and states are the next unit's
}

template <typename T>
__global__ void __launch_bounds__(kThreads) fused_decoder_layer_kernel(FusedLayerParams<T> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) unsigned char raw[];
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank()), ctas = static_cast<int>(cluster.num_blocks());
  const int warp = threadIdx.x / 32;
  const int rows = p.rows, width = p.width;
  const SharedLayout layout = shared_layout<T>(rows, width, p.ffn);
  T* input = reinterpret_cast<T*>(raw + layout.input);
  T* normed1 = reinterpret_cast<T*>(raw + layout.normed1);
  T* normed2 = reinterpret_cast<T*>(raw + layout.normed2);
  T* delta = reinterpret_cast<T*>(raw + layout.delta);
  T* hidden = reinterpret_cast<T*>(raw + layout.hidden);
  T* staged = reinterpret_cast<T*>(raw + layout.weights);
  float* merge = reinterpret_cast<float*>(raw + layout.merge);
  float* heads = reinterpret_cast<float*>(raw + layout.heads);
  int* indices = reinterpret_cast<int*>(raw + layout.indices);
  const RowIndices index{indices, indices + kMaxRows, indices + 2 * kMaxRows, indices + 3 * kMaxRows};
  const LayerContext<T> layer{p, cluster, ctas, index, reinterpret_cast<T*>(raw + layout.queries),
                              reinterpret_cast<T*>(raw + layout.context)};
  const FusedLayerWeights<T>& w = p.weights;
  const int2 width_columns = slice(width, rank, ctas);
  // An epilogue storing y (activated or not) into `buffer` [rows, stride] of every CTA.
  const auto store = [&](T* buffer, int stride, bool activated) {
    return [&, buffer, stride, activated](int r, int column, float value) {
      if (activated) value = activate(value, p.activation);
      broadcast_from_warp(cluster, ctas, buffer, r * stride + column, from_float<T>(value));
    };
  };

  // The weights do not depend on the previous kernel: the first product's copy starts while it
  // finishes.
  start_next_kernel();
  const ColumnProduct<T> qkv{w.qkv, w.qkv_bias, width, slice(3 * width, rank, ctas)};
  qkv.load(staged);
  wait_for_previous_kernel();
  if (threadIdx.x < rows) {
    const int r = threadIdx.x;
    index.slots[r] = p.row_slots[r];
    index.positions[r] = p.position.of(r);
    index.images[r] = p.row_images[r];
  }
  if (threadIdx.x <= p.groups) index.group_starts[threadIdx.x] = p.group_starts[threadIdx.x];
  constexpr int kVector = 16 / sizeof(T);
  for (int i = threadIdx.x; i < rows * width / kVector; i += kThreads) {
    reinterpret_cast<uint4*>(input)[i] = reinterpret_cast<const uint4*>(p.input)[i];
  }
  cluster.sync();  // every CTA runs (and its indices are in) before anyone stores into it

  // 1. Q, K, V; K and V into the cache at each row's position.
  qkv.run(staged, input, rows, [&](int r, int column, float value) {
    const T rounded = from_float<T>(value);
    if (column < width) {
      broadcast_from_warp(cluster, ctas, layer.queries, r * width + column, rounded);
    } else if (threadIdx.x % 32 == 0) {
      const bool key = column < 2 * width;
      T* cache = key ? p.cache_keys : p.cache_values;
      const int c = column - (key ? width : 2 * width);
      cache[int64_t(index.slots[r]) * p.slot_stride + int64_t(index.positions[r]) * width + c] = rounded;
    }
  });
  cluster.sync();

  // 2. Self-attention, a warp per (row, head) over the cluster.
  const ColumnProduct<T> self_output{w.self_output, w.self_output_bias, width, width_columns};
  self_output.load(staged);
  for (int unit = rank * kWarps + warp; unit < rows * p.heads; unit += ctas * kWarps) {
    self_attention_unit(layer, unit / p.heads, unit % p.heads, heads + warp * kMaxHeadDim);
  }
  cluster.sync();

  // 3. Its output projection.
  self_output.run(staged, layer.context, rows, store(delta, width, false));
  const ColumnProduct<T> cross_query{w.cross_query, w.cross_query_bias, width, width_columns};
  cross_query.load(staged);
  cluster.sync();

  // 4. n1 = LN(input + delta) in every CTA; the cross-attention query.
  layer_norm_rows(input, delta, w.self_gamma, w.self_beta, rows, width, p.eps, warp, kWarps, normed1);
  cross_query.run(staged, normed1, rows, store(layer.queries, width, false));
  const ColumnProduct<T> cross_output{w.cross_output, w.cross_output_bias, width, width_columns};
  cross_output.load(staged);
  cluster.sync();

  // 5. Cross-attention, a CTA per (group, head).
  for (int unit = rank; unit < p.groups * p.heads; unit += ctas) {
    cross_attention_unit(layer, unit / p.heads, unit % p.heads, heads, merge);
  }
  cluster.sync();

  // 6. Its output projection.
  cross_output.run(staged, layer.context, rows, store(delta, width, false));
  const ColumnProduct<T> fc1{w.fc1, w.fc1_bias, width, slice(p.ffn, rank, ctas)};
  fc1.load(staged);
  cluster.sync();

  // 7. n2 = LN(n1 + delta); FFN1 with the activation.
  layer_norm_rows(normed1, delta, w.cross_gamma, w.cross_beta, rows, width, p.eps, warp, kWarps, normed2);
  fc1.run(staged, normed2, rows, store(hidden, p.ffn, true));
  const ColumnProduct<T> fc2{w.fc2, w.fc2_bias, p.ffn, width_columns};
  fc2.load(staged);
  cluster.sync();

  // 8. FFN2.
  fc2.run(staged, hidden, rows, store(delta, width, false));
  cluster.sync();  // the last stores into other CTAs' memory are done before any CTA leaves

  // 9. out = LN(n2 + delta), a warp per row over the cluster.
  layer_norm_rows(normed2, delta, w.final_gamma, w.final_beta, rows, width, p.eps, rank * kWarps + warp,
                  ctas * kWarps, p.output);
#endif
}

// The most dynamic shared memory a block may have on Hopper.
constexpr size_t kMaxSharedBytes = 227 * 1024;

// The cluster size: 16 CTAs (Hopper's non-portable maximum) where the GPU can place them, else 8.
// The first call per dtype also lets the kernel take the largest shared memory a launch may ask.
template <typename T>
int cluster_size() {
  static const int size = [] {
    const auto kernel = fused_decoder_layer_kernel<T>;
    TROCR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    TROCR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kMaxSharedBytes)));
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = 16;
    attribute.val.clusterDim.y = attribute.val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(16);
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = kMaxSharedBytes;
    config.attrs = &attribute;
    config.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess || clusters == 0) {
      cudaGetLastError();  // clear it: 8 CTAs are portable
      return 8;
    }
    return 16;
  }();
  return size;
}

template <typename T>
bool fits(int rows, int width, int heads, int ffn) {
  constexpr int kVector = 16 / sizeof(T);
  const int dim = heads > 0 ? width / heads : 0;
  return rows >= 1 && rows <= kMaxRows && width <= kMaxWidth && dim * heads == width && dim <= kMaxHeadDim &&
         dim % kVector == 0 && ffn % kVector == 0 && shared_layout<T>(rows, width, ffn).total <= kMaxSharedBytes;
}

}  // namespace

bool fused_decoder_layer_fits(DType dtype, int rows, int width, int heads, int ffn) {
  if (dtype == DType::F32) return fits<float>(rows, width, heads, ffn);
  if (dtype == DType::F16) return fits<__half>(rows, width, heads, ffn);
  return dtype == DType::BF16 && fits<__nv_bfloat16>(rows, width, heads, ffn);
}

template <typename T>
void fused_decoder_layer(const FusedLayerParams<T>& params, cudaStream_t stream) {
  if (!fits<T>(params.rows, params.width, params.heads, params.ffn)) {
    fail("CUDA decoder: the fused layer does not take {} rows of width {} ({} heads, FFN {})", params.rows,
         params.width, params.heads, params.ffn);
  }
  const int ctas = cluster_size<T>();
  cudaLaunchAttribute attributes[2]{};
  attributes[0].id = cudaLaunchAttributeClusterDimension;
  attributes[0].val.clusterDim.x = ctas;
  attributes[0].val.clusterDim.y = attributes[0].val.clusterDim.z = 1;
  attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[1].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(ctas);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = shared_layout<T>(params.rows, params.width, params.ffn).total;
  config.stream = stream;
  config.attrs = attributes;
  config.numAttrs = use_dependent_launch() ? 2 : 1;
  TROCR_CUDA_CHECK(cudaLaunchKernelEx(&config, fused_decoder_layer_kernel<T>, params));
}

template void fused_decoder_layer<float>(const FusedLayerParams<float>&, cudaStream_t);
template void fused_decoder_layer<__half>(const FusedLayerParams<__half>&, cudaStream_t);
template void fused_decoder_layer<__nv_bfloat16>(const FusedLayerParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace trocr::cuda

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
// What a stage's latency is made of decides the shape (the first version, which passed its
// intermediates through L2 and walked values one load at a time, took ~120 us a layer): every
// intermediate a product writes is stored into every CTA's shared memory (distributed shared
// memory), so a stage reads only local shared memory; a product's weights are loaded into
// registers before the barrier that precedes it; attention issues a tile's loads together.
// Rounding follows the separate kernels: every product's output in T, LayerNorm in fp32 over
// float(residual) + float(delta), softmax in fp32, probabilities rounded to T before the
// cross-attention's values (as the grouped tensor-core kernel does).
#include <cooperative_groups.h>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxRows = kMaxFusedLayerRows;
constexpr int kMaxHeadDim = 64;
constexpr int kMaxWidth = 1024;
constexpr int kKeyTile = 32;
constexpr int kPieces = 8;  // 16-byte weight pieces a lane holds for a product
static_assert(kMaxRows == 16, "the column reduction folds 16 rows over a warp");
static_assert(kMaxRows >= kWarps, "the query area holds a head per warp or per row");

// Byte offsets of the shared arrays (the same in every CTA of the cluster: remote stores use them).
struct SharedLayout {
  size_t input, normed1, normed2, queries, context, delta, hidden, merge, heads, indices, total;
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
  layout.total = layout.indices + round_to_16(size_t(4 * kMaxRows + 1) * sizeof(int));
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

// Stores value at index of `local` in every CTA of the cluster (distributed shared memory).
template <typename T>
__device__ __forceinline__ void broadcast(cg::cluster_group& cluster, int ctas, T* local, int index, T value) {
  for (int rank = 0; rank < ctas; ++rank) cluster.map_shared_rank(local, rank)[index] = value;
}

// Sums 16 values over a warp with 16 shuffles (not 80): each step halves the values a lane
// keeps. Lane l ends with row (l >> 1) & 15's total.
__device__ __forceinline__ float fold_rows(float (&v)[kMaxRows], int lane) {
#pragma unroll
  for (int step = 0; step < 4; ++step) {
    const int half = 8 >> step, bit = 16 >> step;
    const bool upper = (lane & bit) != 0;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const float send = upper ? v[i] : v[i + half];
      const float keep = upper ? v[i + half] : v[i];
      v[i] = keep + __shfl_xor_sync(0xffffffff, send, bit);
    }
  }
  return v[0] + __shfl_xor_sync(0xffffffff, v[0], 1);
}

// A product y = x W^T + b over this CTA's columns: a warp per column, `together` columns per warp
// at a time so that kPieces 16-byte loads per lane are in flight. load() issues the warp's first
// batch (call it before the barrier that precedes the product: weights do not depend on it);
// run() computes every batch and calls epilogue(row, column, value) once per (row, column).
template <typename T>
struct ColumnProduct {
  static constexpr int kVector = 16 / sizeof(T);
  const T* w;
  const T* bias;
  int k;
  int2 columns;
  int pieces_per_column, together;
  uint4 weights[kPieces];

  __device__ ColumnProduct(const T* w, const T* bias, int k, int2 columns)
      : w(w), bias(bias), k(k), columns(columns), pieces_per_column((k / kVector + 31) / 32),
        together(max(1, kPieces / pieces_per_column)) {}

  __device__ __forceinline__ void load_batch(int first) {
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int p = 0; p < kPieces; ++p) {
      const int column = first + p / pieces_per_column, base = (lane + 32 * (p % pieces_per_column)) * kVector;
      if (p < together * pieces_per_column && column < columns.y && base < k) {
        weights[p] = __ldg(reinterpret_cast<const uint4*>(w + int64_t(column) * k + base));
      }
    }
  }
  __device__ __forceinline__ void load() { load_batch(columns.x + (threadIdx.x / 32) * together); }

  template <typename Epilogue>
  __device__ __forceinline__ void run(const T* x, int rows, Epilogue epilogue) {
    const int lane = threadIdx.x % 32;
    bool loaded = true;
    for (int first = columns.x + (threadIdx.x / 32) * together; first < columns.y; first += kWarps * together) {
      if (!loaded) load_batch(first);
      loaded = false;
      for (int c = 0; c < together && first + c < columns.y; ++c) {
        float sums[kMaxRows];
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r) sums[r] = 0.0f;
#pragma unroll
        for (int p = 0; p < kPieces; ++p) {
          if (p / pieces_per_column != c) continue;
          const int base = (lane + 32 * (p % pieces_per_column)) * kVector;
          if (base >= k) continue;
          const T* weight = reinterpret_cast<const T*>(&weights[p]);
#pragma unroll
          for (int r = 0; r < kMaxRows; ++r) {
            if (r < rows) {
              const uint4 packed = *reinterpret_cast<const uint4*>(x + r * k + base);
              const T* input = reinterpret_cast<const T*>(&packed);
#pragma unroll
              for (int v = 0; v < kVector; ++v) sums[r] += to_float(weight[v]) * to_float(input[v]);
            }
          }
        }
        const float total = fold_rows(sums, lane);
        const int row = (lane >> 1) & 15, column = first + c;
        if ((lane & 1) == 0 && row < rows) {
          epilogue(row, column, total + (bias != nullptr ? to_float(bias[column]) : 0.0f));
        }
      }
    }
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
// row), then the warps' states merge in shared memory (merge: [kWarps][16][dim + 2] floats).
template <typename T>
__device__ void cross_attention_unit(const LayerContext<T>& layer, int group, int head, float* queries, float* merge) {
  const FusedLayerParams<T>& p = layer.p;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, dim = p.width / p.heads;
  const int first_row = layer.index.group_starts[group], count = layer.index.group_starts[group + 1] - first_row;
  const int64_t table = int64_t(layer.index.images[first_row]) * p.image_stride + head * dim;
  for (int i = threadIdx.x; i < count * kMaxHeadDim; i += kThreads) {
    const int r = i / kMaxHeadDim, d = i % kMaxHeadDim;
    queries[i] = d < dim ? to_float(layer.queries[(first_row + r) * p.width + head * dim + d]) * p.scale : 0.0f;
  }
  __syncthreads();
  const int2 range = slice(p.keys, warp, kWarps);
  float running_max[kMaxRows], partial_sum[kMaxRows], out[kMaxRows][kMaxHeadDim / 32];
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    running_max[r] = -INFINITY, partial_sum[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) out[r][i] = 0.0f;
  }
  for (int tile = range.x; tile < range.y; tile += kKeyTile) {
    const int j = tile + lane, keys_here = min(kKeyTile, range.y - tile);
    const bool inside = j < range.y;
    float key[kMaxHeadDim];
    load_head_row(p.cross_keys + table + int64_t(inside ? j : range.x) * p.key_stride, dim, key);
    float weights[kMaxRows];
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) {
      weights[r] = 0.0f;
      if (r >= count) continue;
      float score = 0.0f;
#pragma unroll
      for (int d = 0; d < kMaxHeadDim; ++d) score += queries[r * kMaxHeadDim + d] * key[d];
      score = inside ? score : -INFINITY;
      float tile_max = score;
      for (int offset = 16; offset > 0; offset /= 2) {
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, offset));
      }
      const float new_max = fmaxf(running_max[r], tile_max);
      const float correction = expf(running_max[r] - new_max);
      const float weight = inside ? expf(score - new_max) : 0.0f;
      partial_sum[r] = partial_sum[r] * correction + weight;
      running_max[r] = new_max;
#pragma unroll
      for (int i = 0; i < kMaxHeadDim / 32; ++i) out[r][i] *= correction;
      weights[r] = to_float(from_float<T>(weight));
    }
    const T* values = p.cross_values + table + int64_t(tile) * p.key_stride;
    for (int first = 0; first < keys_here; first += kValueRound) {
      float v[kValueRound][kMaxHeadDim / 32];
      load_value_round(values, p.key_stride, first, keys_here, dim, v);
#pragma unroll
      for (int u = 0; u < kValueRound; ++u) {
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r) {
          if (r >= count) continue;
          const float w = __shfl_sync(0xffffffff, weights[r], (first + u) & 31);
#pragma unroll
          for (int i = 0; i < kMaxHeadDim / 32; ++i) out[r][i] += w * v[u][i];
        }
      }
    }
  }
  const int stride = dim + 2;
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    if (r >= count) continue;
    float sum = partial_sum[r];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    float* state = merge + (warp * kMaxRows + r) * stride;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) {
      if (lane + 32 * i < dim) state[lane + 32 * i] = out[r][i];
    }
    if (lane == 0) state[dim] = running_max[r], state[dim + 1] = sum;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < count * dim; i += kThreads) {
    const int r = i / dim, d = i % dim;
    float largest = -INFINITY;
    for (int w = 0; w < kWarps; ++w) largest = fmaxf(largest, merge[(w * kMaxRows + r) * stride + dim]);
    float total = 0.0f, value = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float* state = merge + (w * kMaxRows + r) * stride;
      if (state[dim] == -INFINITY) continue;  // a warp without keys
      const float factor = expf(state[dim] - largest);
      total += state[dim + 1] * factor;
      value += state[d] * factor;
    }
    broadcast(layer.cluster, layer.ctas, layer.context, (first_row + r) * p.width + head * dim + d,
              from_float<T>(value / total));
  }
  __syncthreads();  // queries and merge are the next unit's
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
  float* merge = reinterpret_cast<float*>(raw + layout.merge);
  float* heads = reinterpret_cast<float*>(raw + layout.heads);
  int* indices = reinterpret_cast<int*>(raw + layout.indices);
  const RowIndices index{indices, indices + kMaxRows, indices + 2 * kMaxRows, indices + 3 * kMaxRows};
  const LayerContext<T> layer{p, cluster, ctas, index, reinterpret_cast<T*>(raw + layout.queries),
                              reinterpret_cast<T*>(raw + layout.context)};
  const FusedLayerWeights<T>& w = p.weights;
  const int2 width_columns = slice(width, rank, ctas);
  const auto store = [&](T* buffer, int stride) {
    return [&, buffer, stride](int r, int column, float value) {
      broadcast(cluster, ctas, buffer, r * stride + column, from_float<T>(value));
    };
  };

  // The weights do not depend on the previous kernel: the first product's load while it finishes.
  start_next_kernel();
  ColumnProduct<T> qkv(w.qkv, w.qkv_bias, width, slice(3 * width, rank, ctas));
  qkv.load();
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
  qkv.run(input, rows, [&](int r, int column, float value) {
    const T rounded = from_float<T>(value);
    if (column < width) {
      broadcast(cluster, ctas, layer.queries, r * width + column, rounded);
      return;
    }
    const bool key = column < 2 * width;
    T* cache = key ? p.cache_keys : p.cache_values;
    const int c = column - (key ? width : 2 * width);
    cache[int64_t(index.slots[r]) * p.slot_stride + int64_t(index.positions[r]) * width + c] = rounded;
  });
  cluster.sync();

  // 2. Self-attention, a warp per (row, head) over the cluster.
  ColumnProduct<T> self_output(w.self_output, w.self_output_bias, width, width_columns);
  for (int unit = rank * kWarps + warp; unit < rows * p.heads; unit += ctas * kWarps) {
    self_attention_unit(layer, unit / p.heads, unit % p.heads, heads + warp * kMaxHeadDim);
  }
  self_output.load();
  cluster.sync();

  // 3. Its output projection.
  ColumnProduct<T> cross_query(w.cross_query, w.cross_query_bias, width, width_columns);
  self_output.run(layer.context, rows, store(delta, width));
  cross_query.load();
  cluster.sync();

  // 4. n1 = LN(input + delta) in every CTA; the cross-attention query.
  layer_norm_rows(input, delta, w.self_gamma, w.self_beta, rows, width, p.eps, warp, kWarps, normed1);
  __syncthreads();
  cross_query.run(normed1, rows, store(layer.queries, width));
  cluster.sync();

  // 5. Cross-attention, a CTA per (group, head).
  ColumnProduct<T> cross_output(w.cross_output, w.cross_output_bias, width, width_columns);
  for (int unit = rank; unit < p.groups * p.heads; unit += ctas) {
    cross_attention_unit(layer, unit / p.heads, unit % p.heads, heads, merge);
  }
  cross_output.load();
  cluster.sync();

  // 6. Its output projection.
  ColumnProduct<T> fc1(w.fc1, w.fc1_bias, width, slice(p.ffn, rank, ctas));
  cross_output.run(layer.context, rows, store(delta, width));
  fc1.load();
  cluster.sync();

  // 7. n2 = LN(n1 + delta); FFN1 with the activation.
  ColumnProduct<T> fc2(w.fc2, w.fc2_bias, p.ffn, width_columns);
  layer_norm_rows(normed1, delta, w.cross_gamma, w.cross_beta, rows, width, p.eps, warp, kWarps, normed2);
  __syncthreads();
  fc1.run(normed2, rows, [&](int r, int column, float value) {
    broadcast(cluster, ctas, hidden, r * p.ffn + column, from_float<T>(activate(value, p.activation)));
  });
  fc2.load();
  cluster.sync();

  // 8. FFN2.
  fc2.run(hidden, rows, store(delta, width));
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
         dim % kVector == 0 && ffn % kVector == 0 &&
         // ColumnProduct holds a column's 16-byte pieces in kPieces registers per lane
         (ffn / kVector + 31) / 32 <= kPieces && (width / kVector + 31) / 32 <= kPieces &&
         shared_layout<T>(rows, width, ffn).total <= kMaxSharedBytes;
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

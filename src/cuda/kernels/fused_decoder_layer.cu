// A whole post-LN decoder layer in one launch, for small decoders at a few rows (#16): one
// thread-block cluster runs the layer's stages with a cluster barrier between them instead of a
// kernel boundary. At batch 1 a separate-kernel layer is ~9 launches of ~3 us, each mostly fixed
// cost around a little work (docs/CUDA_ENGINE.md); a small decoder's layer (d_model 256: ~1.8 MB
// of fp16 weights) streams through 16 SMs in a few microseconds.
//
// Stages (CTA c of C owns a 1/C slice of each product's output columns):
//   1. Q/K/V of the input rows; K and V go into the cache at each row's position
//   2. self-attention, a warp per (row, head)           5. cross-attention, a CTA per (group, head)
//   3. self-attention output -> delta                   6. cross-attention output -> delta
//   4. n1 = LN(input + delta) (every CTA, all rows),    7. n2 = LN(n1 + delta), FFN1 + activation
//      the cross-attention query                        8. FFN2 -> delta; 9. out = LN(n2 + delta)
// Intermediates between CTAs go through global memory (L2), read with ld.global.cg after the
// barrier. Rounding follows the separate kernels: every product's output in T, LayerNorm in fp32
// over float(residual) + float(delta), softmax in fp32.
#include <cooperative_groups.h>

#include <type_traits>

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
constexpr int kMaxHeadDim = 64;
constexpr int kKeyTile = 32;
static_assert(kMaxFusedLayerRows == 16, "the column reduction folds 16 rows over a warp");
static_assert(kMaxFusedLayerRows >= kWarps, "the query area holds a head per warp or per row");

// Byte offsets of the shared arrays, for `rows` rows.
struct SharedLayout {
  size_t input, normed1, normed2, staged, queries, total;
};

__host__ __device__ inline size_t round_to_16(size_t bytes) { return (bytes + 15) / 16 * 16; }

template <typename T>
__host__ __device__ SharedLayout shared_layout(int rows, int width, int ffn) {
  const size_t row_bytes = round_to_16(size_t(rows) * width * sizeof(T));
  const size_t inputs = round_to_16(size_t(rows) * (width > ffn ? width : ffn) * sizeof(T));
  const size_t merge = round_to_16(size_t(kWarps) * kMaxFusedLayerRows * (kMaxHeadDim + 2) * sizeof(float));
  SharedLayout layout{};
  layout.input = 0;
  layout.normed1 = layout.input + row_bytes;
  layout.normed2 = layout.normed1 + row_bytes;
  layout.staged = layout.normed2 + row_bytes;
  layout.queries = layout.staged + (inputs > merge ? inputs : merge);
  layout.total = layout.queries + round_to_16(size_t(kMaxFusedLayerRows) * kMaxHeadDim * sizeof(float));
  return layout;
}

// [begin, end) of n split into `parts` near-equal slices.
__device__ __forceinline__ int2 slice(int n, int part, int parts) {
  return make_int2(int(int64_t(n) * part / parts), int(int64_t(n) * (part + 1) / parts));
}

__device__ __forceinline__ uint4 load_cg(const void* pointer) {
  return __ldcg(reinterpret_cast<const uint4*>(pointer));
}

// A key or value row of `dim` (<= 64, a multiple of 16 bytes) values into fp32 registers.
template <typename T>
__device__ __forceinline__ void load_head_row(const T* row, int dim, float (&out)[kMaxHeadDim]) {
  constexpr int kVector = 16 / sizeof(T);
#pragma unroll
  for (int d = 0; d < kMaxHeadDim; d += kVector) {
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (d < dim) packed = load_cg(row + d);
    const T* values = reinterpret_cast<const T*>(&packed);
#pragma unroll
    for (int v = 0; v < kVector; ++v) out[d + v] = d < dim ? to_float(values[v]) : 0.0f;
  }
}

// Copies rows x width values of T from global memory (written by other CTAs) to shared.
template <typename T>
__device__ void stage_rows(const T* from, int rows, int width, T* to) {
  constexpr int kVector = 16 / sizeof(T);
  const int pieces = rows * width / kVector;
  for (int i = threadIdx.x; i < pieces; i += kThreads) {
    reinterpret_cast<uint4*>(to)[i] = load_cg(from + int64_t(i) * kVector);
  }
}

// Sums 16 values over a warp with 16 shuffles (not 80): each step halves the values a lane
// keeps. Lane l ends with row (l >> 1) & 15's total.
__device__ __forceinline__ float fold_rows(float (&v)[kMaxFusedLayerRows], int lane) {
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

// Columns [begin, end) of x W^T + bias for the staged rows x [rows, k] (shared), a warp per
// column, as many columns' weights in flight per lane as kPieces registers hold; then
// epilogue(row, column, value) once per (row, column).
template <typename T, typename Epilogue>
__device__ void linear_columns(const T* x, int rows, int k, const T* w, const T* bias, int2 columns,
                               Epilogue epilogue) {
  constexpr int kVector = 16 / sizeof(T);
  constexpr int kPieces = 8;  // 16-byte weight pieces per lane in flight
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pieces_per_column = (k / kVector + 31) / 32;
  const int together = max(1, kPieces / pieces_per_column);  // columns a warp loads at once
  for (int first = columns.x + warp * together; first < columns.y; first += kWarps * together) {
    uint4 weights[kPieces];
#pragma unroll
    for (int p = 0; p < kPieces; ++p) {
      const int column = first + p / pieces_per_column, base = (lane + 32 * (p % pieces_per_column)) * kVector;
      if (p < together * pieces_per_column && column < columns.y && base < k) {
        weights[p] = __ldg(reinterpret_cast<const uint4*>(w + int64_t(column) * k + base));
      }
    }
    for (int c = 0; c < together && first + c < columns.y; ++c) {
      float sums[kMaxFusedLayerRows];
#pragma unroll
      for (int r = 0; r < kMaxFusedLayerRows; ++r) sums[r] = 0.0f;
#pragma unroll
      for (int p = 0; p < kPieces; ++p) {
        if (p / pieces_per_column != c) continue;
        const int base = (lane + 32 * (p % pieces_per_column)) * kVector;
        if (base >= k) continue;
        const T* weight = reinterpret_cast<const T*>(&weights[p]);
#pragma unroll
        for (int r = 0; r < kMaxFusedLayerRows; ++r) {
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
      if ((lane & 1) == 0 && row < rows) epilogue(row, column, total + (bias != nullptr ? to_float(bias[column]) : 0.0f));
    }
  }
}

// out[r] = LayerNorm(float(residual[r]) + float(delta[r])) for rows r = first, first + step, ...,
// a warp per row; residual may be shared or global, delta is global (read through L2).
template <typename T>
__device__ void layer_norm_rows(const T* residual, const T* delta, const float* gamma, const float* beta, int rows,
                                int width, float eps, int first, int step, T* out) {
  const int lane = threadIdx.x % 32;
  for (int row = first; row < rows; row += step) {
    float sum = 0.0f;
    for (int c = lane; c < width; c += 32) {
      sum += to_float(residual[row * width + c]) + to_float(__ldcg(delta + row * width + c));
    }
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    const float mean = sum / width;
    float squares = 0.0f;
    for (int c = lane; c < width; c += 32) {
      const float value = to_float(residual[row * width + c]) + to_float(__ldcg(delta + row * width + c)) - mean;
      squares += value * value;
    }
    for (int offset = 16; offset > 0; offset /= 2) squares += __shfl_xor_sync(0xffffffff, squares, offset);
    const float inverse = rsqrtf(squares / width + eps);
    for (int c = lane; c < width; c += 32) {
      const float value = to_float(residual[row * width + c]) + to_float(__ldcg(delta + row * width + c));
      out[row * width + c] = from_float<T>((value - mean) * inverse * gamma[c] + beta[c]);
    }
  }
}

// Self-attention of row `row`, head `head` over its cache (keys 0 .. position), a warp: lanes
// take keys in tiles of 32 (online softmax), then output dimensions. fp32 throughout.
template <typename T>
__device__ void self_attention_unit(const FusedLayerParams<T>& p, int row, int head, float* query) {
  const int lane = threadIdx.x % 32, dim = p.width / p.heads;
  const int keys = p.position.of(row) + 1;
  const int64_t table = int64_t(p.row_slots[row]) * p.slot_stride + head * dim;
  for (int d = lane; d < kMaxHeadDim; d += 32) {
    query[d] = d < dim ? to_float(__ldcg(p.queries + row * p.width + head * dim + d)) * p.scale : 0.0f;
  }
  __syncwarp();
  float running_max = -INFINITY, partial_sum = 0.0f, out[kMaxHeadDim / 32] = {};
  for (int tile = 0; tile < keys; tile += kKeyTile) {
    const int j = tile + lane;
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
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) out[i] *= correction;
    const int count = min(kKeyTile, keys - tile);
    for (int k = 0; k < count; ++k) {
      const float w = __shfl_sync(0xffffffff, weight, k);
      const T* value = p.cache_values + table + int64_t(tile + k) * p.width;
#pragma unroll
      for (int i = 0; i < kMaxHeadDim / 32; ++i) {
        if (lane + 32 * i < dim) out[i] += w * to_float(__ldcg(value + lane + 32 * i));
      }
    }
    running_max = new_max;
  }
  for (int offset = 16; offset > 0; offset /= 2) partial_sum += __shfl_xor_sync(0xffffffff, partial_sum, offset);
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) {
    if (lane + 32 * i < dim) {
      p.context[row * p.width + head * dim + lane + 32 * i] = from_float<T>(out[i] / partial_sum);
    }
  }
  __syncwarp();
}

// Cross-attention of group `group` (consecutive rows of one image), head `head`: the CTA's warps
// split the image's keys; a lane scores one key against every row of the group (online softmax
// per row), then the warps' states merge in shared memory (merge: [kWarps][16][dim + 2]).
template <typename T>
__device__ void cross_attention_unit(const FusedLayerParams<T>& p, int group, int head, float* queries, float* merge) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, dim = p.width / p.heads;
  const int first_row = p.group_starts[group], count = p.group_starts[group + 1] - first_row;
  const int64_t table = int64_t(p.row_images[first_row]) * p.image_stride + head * dim;
  for (int i = threadIdx.x; i < count * kMaxHeadDim; i += kThreads) {
    const int r = i / kMaxHeadDim, d = i % kMaxHeadDim;
    queries[i] = d < dim ? to_float(__ldcg(p.queries + (first_row + r) * p.width + head * dim + d)) * p.scale : 0.0f;
  }
  __syncthreads();
  const int2 range = slice(p.keys, warp, kWarps);
  float running_max[kMaxFusedLayerRows], partial_sum[kMaxFusedLayerRows], out[kMaxFusedLayerRows][kMaxHeadDim / 32];
#pragma unroll
  for (int r = 0; r < kMaxFusedLayerRows; ++r) {
    running_max[r] = -INFINITY, partial_sum[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) out[r][i] = 0.0f;
  }
  for (int tile = range.x; tile < range.y; tile += kKeyTile) {
    const int j = tile + lane;
    const bool inside = j < range.y;
    float key[kMaxHeadDim];
    load_head_row(p.cross_keys + table + int64_t(inside ? j : range.x) * p.key_stride, dim, key);
    const int keys_here = min(kKeyTile, range.y - tile);
#pragma unroll
    for (int r = 0; r < kMaxFusedLayerRows; ++r) {
      if (r >= count) break;
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
      // The grouped tensor-core kernel multiplies values by probabilities rounded to T.
      const float rounded = to_float(from_float<T>(weight));
      for (int k = 0; k < keys_here; ++k) {
        const float w = __shfl_sync(0xffffffff, rounded, k);
        const T* value = p.cross_values + table + int64_t(tile + k) * p.key_stride;
#pragma unroll
        for (int i = 0; i < kMaxHeadDim / 32; ++i) {
          if (lane + 32 * i < dim) out[r][i] += w * to_float(value[lane + 32 * i]);
        }
      }
    }
  }
  const int stride = dim + 2;
#pragma unroll
  for (int r = 0; r < kMaxFusedLayerRows; ++r) {
    if (r >= count) break;
    float sum = partial_sum[r];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    float* state = merge + (warp * kMaxFusedLayerRows + r) * stride;
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
    for (int w = 0; w < kWarps; ++w) largest = fmaxf(largest, merge[(w * kMaxFusedLayerRows + r) * stride + dim]);
    float total = 0.0f, value = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float* state = merge + (w * kMaxFusedLayerRows + r) * stride;
      if (state[dim] == -INFINITY) continue;  // a warp without keys
      const float factor = expf(state[dim] - largest);
      total += state[dim + 1] * factor;
      value += state[d] * factor;
    }
    p.context[(first_row + r) * p.width + head * dim + d] = from_float<T>(value / total);
  }
  __syncthreads();  // queries and merge are the next unit's
}

// Starts the L2's fetch of this CTA's slice of a [n, k] weight matrix (columns `columns`).
template <typename T>
__device__ void prefetch_slice(const T* w, int k, int2 columns) {
  const char* begin = reinterpret_cast<const char*>(w + int64_t(columns.x) * k);
  const int64_t bytes = int64_t(columns.y - columns.x) * k * sizeof(T);
  for (int64_t offset = int64_t(threadIdx.x) * 128; offset < bytes; offset += int64_t(kThreads) * 128) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(begin + offset));
  }
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
  T* staged = reinterpret_cast<T*>(raw + layout.staged);
  float* queries = reinterpret_cast<float*>(raw + layout.queries);
  const FusedLayerWeights<T>& w = p.weights;
  const int2 qkv_columns = slice(3 * width, rank, ctas), width_columns = slice(width, rank, ctas),
             ffn_columns = slice(p.ffn, rank, ctas);

  // The weights do not depend on the previous kernel: the L2 fetches them while it finishes.
  start_next_kernel();
  prefetch_slice(w.qkv, width, qkv_columns);
  prefetch_slice(w.self_output, width, width_columns);
  prefetch_slice(w.cross_query, width, width_columns);
  prefetch_slice(w.cross_output, width, width_columns);
  prefetch_slice(w.fc1, width, ffn_columns);
  prefetch_slice(w.fc2, p.ffn, width_columns);
  wait_for_previous_kernel();
  stage_rows(p.input, rows, width, input);
  __syncthreads();

  // 1. Q, K, V; K and V into the cache at each row's position.
  linear_columns(input, rows, width, w.qkv, w.qkv_bias, qkv_columns, [&](int r, int column, float value) {
    const T rounded = from_float<T>(value);
    if (column < width) {
      p.queries[r * width + column] = rounded;
      return;
    }
    const bool key = column < 2 * width;
    T* cache = key ? p.cache_keys : p.cache_values;
    const int c = column - (key ? width : 2 * width);
    cache[int64_t(p.row_slots[r]) * p.slot_stride + int64_t(p.position.of(r)) * width + c] = rounded;
  });
  cluster.sync();

  // 2. Self-attention, a warp per (row, head) over the cluster.
  for (int unit = rank * kWarps + warp; unit < rows * p.heads; unit += ctas * kWarps) {
    self_attention_unit(p, unit / p.heads, unit % p.heads, queries + warp * kMaxHeadDim);
  }
  cluster.sync();

  // 3. Its output projection.
  stage_rows(p.context, rows, width, staged);
  __syncthreads();
  linear_columns(staged, rows, width, w.self_output, w.self_output_bias, width_columns,
                 [&](int r, int column, float value) { p.delta[r * width + column] = from_float<T>(value); });
  cluster.sync();

  // 4. n1 = LN(input + delta) in every CTA; the cross-attention query.
  layer_norm_rows(input, p.delta, w.self_gamma, w.self_beta, rows, width, p.eps, warp, kWarps, normed1);
  __syncthreads();
  linear_columns(normed1, rows, width, w.cross_query, w.cross_query_bias, width_columns,
                 [&](int r, int column, float value) { p.queries[r * width + column] = from_float<T>(value); });
  cluster.sync();

  // 5. Cross-attention, a CTA per (group, head).
  for (int unit = rank; unit < p.groups * p.heads; unit += ctas) {
    cross_attention_unit(p, unit / p.heads, unit % p.heads, queries, reinterpret_cast<float*>(staged));
  }
  cluster.sync();

  // 6. Its output projection.
  stage_rows(p.context, rows, width, staged);
  __syncthreads();
  linear_columns(staged, rows, width, w.cross_output, w.cross_output_bias, width_columns,
                 [&](int r, int column, float value) { p.delta[r * width + column] = from_float<T>(value); });
  cluster.sync();

  // 7. n2 = LN(n1 + delta); FFN1 with the activation.
  layer_norm_rows(normed1, p.delta, w.cross_gamma, w.cross_beta, rows, width, p.eps, warp, kWarps, normed2);
  __syncthreads();
  linear_columns(normed2, rows, width, w.fc1, w.fc1_bias, ffn_columns, [&](int r, int column, float value) {
    p.hidden[r * p.ffn + column] = from_float<T>(activate(value, p.activation));
  });
  cluster.sync();

  // 8. FFN2.
  stage_rows(p.hidden, rows, p.ffn, staged);
  __syncthreads();
  linear_columns(staged, rows, p.ffn, w.fc2, w.fc2_bias, width_columns,
                 [&](int r, int column, float value) { p.delta[r * width + column] = from_float<T>(value); });
  cluster.sync();

  // 9. out = LN(n2 + delta), a warp per row over the cluster.
  layer_norm_rows(normed2, p.delta, w.final_gamma, w.final_beta, rows, width, p.eps, rank * kWarps + warp,
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
  return rows >= 1 && rows <= kMaxFusedLayerRows && dim * heads == width && dim <= kMaxHeadDim &&
         dim % kVector == 0 && ffn % kVector == 0 &&
         // linear_columns holds a column's 16-byte pieces in 8 registers per lane
         (ffn / kVector + 31) / 32 <= 8 && (width / kVector + 31) / 32 <= 8 &&
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

// Attention of one query row against a key/value table, split over keys (flash-decoding):
// each block takes one (head, row, chunk of 32 keys) and leaves its maximum, its sum of
// exponentials and its unnormalised weighted values; a second kernel combines the chunks.
// A block-per-(head, row) kernel walking all 577 encoder keys was latency-bound (~55 ms for
// 20 trocr-base steps at batch 1); chunking spreads the keys over many SMs.
#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxHeadDim = 256;

template <typename T>
__global__ void attention_chunk_kernel(DecodeAttentionParams params, const T* queries, T* keys,
                                       T* values, const T* new_keys, const T* new_values, T* out) {
  __shared__ float query[kMaxHeadDim];
  __shared__ float scores[kAttentionChunk];
  __shared__ float partial[kWarps][kMaxHeadDim];
  const int dim = params.head_dim;
  const int head = blockIdx.x, row = blockIdx.y, chunk = blockIdx.z;
  const int chunks = gridDim.z;
  start_next_kernel();
  wait_for_previous_kernel();
  float* result = params.scratch + ((int64_t(row) * params.heads + head) * chunks + chunk) * (dim + 2);
  const int source = params.sources[row];
  const int64_t table = int64_t(source) * params.source_stride + head * dim;
  int key_count = params.key_count;
  const int first = chunk * kAttentionChunk;
  if (params.position.values != nullptr) {
    const int position = params.position.of(row);
    key_count = position + 1;
    if (position >= first && position < first + kAttentionChunk) {
      // The block whose chunk holds the new position writes this head's new key and value.
      const int64_t at = table + position * params.row_stride;
      const int64_t from = int64_t(row) * params.new_stride + head * dim;
      for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        keys[at + d] = new_keys[from + d];
        values[at + d] = new_values[from + d];
      }
    }
  }
  const int count = min(kAttentionChunk, key_count - first);
  if (count <= 0) {
    if (threadIdx.x == 0) result[dim] = -INFINITY, result[dim + 1] = 0.0f;
    return;
  }
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    query[d] = to_float(queries[int64_t(row) * params.q_stride + head * dim + d]) * params.scale;
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int j = warp; j < count; j += kWarps) {
    const T* key = keys + table + int64_t(first + j) * params.row_stride;
    float dot = 0.0f;
    for (int d = lane; d < dim; d += 32) dot += query[d] * to_float(key[d]);
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffff, dot, offset);
    if (lane == 0) scores[j] = dot;
  }
  __syncthreads();
  float largest = -INFINITY;
  for (int j = 0; j < count; ++j) largest = fmaxf(largest, scores[j]);
  // Each warp sums a strided subset of the keys for every dimension its lanes cover.
  float accumulators[kMaxHeadDim / 32];
  for (int i = 0; i < kMaxHeadDim / 32; ++i) accumulators[i] = 0.0f;
  float total = 0.0f;
  for (int j = warp; j < count; j += kWarps) {
    const float weight = __expf(scores[j] - largest);
    total += weight;
    const T* value = values + table + int64_t(first + j) * params.row_stride;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) {
      const int d = lane + 32 * i;
      if (d < dim) accumulators[i] += weight * to_float(value[d]);
    }
  }
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) {
    const int d = lane + 32 * i;
    if (d < dim) partial[warp][d] = accumulators[i];
  }
  __shared__ float totals[kWarps];
  if (lane == 0) totals[warp] = total;
  __syncthreads();
  float sum_of_totals = 0.0f;
  for (int w = 0; w < kWarps; ++w) sum_of_totals += totals[w];
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += partial[w][d];
    // A single chunk (the self-attention of short sequences) is the whole answer.
    if (chunks == 1) {
      out[int64_t(row) * params.heads * dim + head * dim + d] = from_float<T>(sum / sum_of_totals);
    } else {
      result[d] = sum;
    }
  }
  if (threadIdx.x == 0 && chunks > 1) {
    result[dim] = largest;
    result[dim + 1] = sum_of_totals;
  }
}

template <typename T>
__global__ void attention_combine_kernel(const float* scratch, int heads, int dim, int chunks, T* out) {
  const int head = blockIdx.x, row = blockIdx.y;
  start_next_kernel();
  wait_for_previous_kernel();
  const float* partials = scratch + (int64_t(row) * heads + head) * chunks * (dim + 2);
  float largest = -INFINITY;
  for (int c = 0; c < chunks; ++c) largest = fmaxf(largest, partials[c * (dim + 2) + dim]);
  float total = 0.0f;
  for (int c = 0; c < chunks; ++c) {
    const float* chunk = partials + c * (dim + 2);
    if (chunk[dim + 1] > 0.0f) total += chunk[dim + 1] * __expf(chunk[dim] - largest);
  }
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int c = 0; c < chunks; ++c) {
      const float* chunk = partials + c * (dim + 2);
      if (chunk[dim + 1] > 0.0f) sum += chunk[d] * __expf(chunk[dim] - largest);
    }
    out[int64_t(row) * heads * dim + head * dim + d] = from_float<T>(sum / total);
  }
}

}  // namespace

template <typename T>
void decode_attention(const DecodeAttentionParams& params, const T* queries, T* keys, T* values,
                      const T* new_keys, const T* new_values, T* out, cudaStream_t stream) {
  if (params.rows == 0) return;
  if (params.head_dim > kMaxHeadDim) fail("decode attention: head dimension {} > {}", params.head_dim, kMaxHeadDim);
  const int chunks = (params.max_keys + kAttentionChunk - 1) / kAttentionChunk;
  dim3 grid(params.heads, params.rows, chunks);
  launch_dependent(attention_chunk_kernel<T>, grid, kThreads, 0, stream, params, queries, keys, values, new_keys,
                   new_values, out);
  if (chunks > 1) combine_attention_chunks<T>(params.scratch, params.rows, params.heads, params.head_dim, chunks, out, stream);
}

template <typename T>
void combine_attention_chunks(const float* scratch, int rows, int heads, int head_dim, int chunks, T* out,
                              cudaStream_t stream) {
  launch_dependent(attention_combine_kernel<T>, dim3(heads, rows), 64, 0, stream, scratch, heads, head_dim, chunks,
                   out);
}

std::vector<int> cross_attention_groups(const std::vector<int>& row_images) {
  std::vector<int> starts;
  for (size_t r = 0; r < row_images.size(); ++r) {
    const bool new_group = starts.empty() || row_images[r] != row_images[starts.back()] ||
                           int(r) - starts.back() == kMaxCrossGroupRows;
    if (new_group) starts.push_back(int(r));
  }
  starts.push_back(int(row_images.size()));
  return starts;
}

#define INSTANTIATE(T)                                                                         \
  template void decode_attention<T>(const DecodeAttentionParams&, const T*, T*, T*, const T*,   \
                                    const T*, T*, cudaStream_t);                               \
  template void combine_attention_chunks<T>(const float*, int, int, int, int, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

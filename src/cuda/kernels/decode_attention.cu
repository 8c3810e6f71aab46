// Attention of one query row per block and head, over a KV cache (self-attention) or the
// image's cross-attention keys. Warps split the keys, lanes split the head dimension.
#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

template <typename T>
__global__ void decode_attention_kernel(DecodeAttentionParams params, const T* queries, T* keys,
                                        T* values, const T* new_keys, const T* new_values, T* out) {
  extern __shared__ float shared[];
  const int dim = params.head_dim;
  float* query = shared;              // [dim]
  float* scores = shared + dim;       // [key_count]
  __shared__ float reduce[kWarps];
  const int row = blockIdx.y, head = blockIdx.x;
  const int source = params.sources[row];
  const int64_t table = static_cast<int64_t>(source) * params.source_stride + head * dim;
  int key_count = params.key_count;
  if (params.position != nullptr) {
    const int position = *params.position;
    key_count = position + 1;
    const int64_t at = table + position * params.row_stride;
    const int64_t from = static_cast<int64_t>(row) * params.new_stride + head * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
      keys[at + d] = new_keys[from + d];
      values[at + d] = new_values[from + d];
    }
  }
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    query[d] = to_float(queries[static_cast<int64_t>(row) * params.q_stride + head * dim + d]);
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float largest = -INFINITY;
  for (int j = warp; j < key_count; j += kWarps) {
    const T* key = keys + table + j * params.row_stride;
    float dot = 0.0f;
    for (int d = lane; d < dim; d += 32) dot += query[d] * to_float(key[d]);
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffff, dot, offset);
    dot *= params.scale;
    if (lane == 0) scores[j] = dot;
    largest = fmaxf(largest, dot);
  }
  if (lane == 0) reduce[warp] = largest;
  __syncthreads();
  largest = reduce[0];
  for (int w = 1; w < kWarps; ++w) largest = fmaxf(largest, reduce[w]);
  __syncthreads();
  float total = 0.0f;
  for (int j = threadIdx.x; j < key_count; j += blockDim.x) {
    scores[j] = __expf(scores[j] - largest);
    total += scores[j];
  }
  for (int offset = 16; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffff, total, offset);
  if (lane == 0) reduce[warp] = total;
  __syncthreads();
  total = 0.0f;
  for (int w = 0; w < kWarps; ++w) total += reduce[w];
  const float inverse = 1.0f / total;
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    float accumulator = 0.0f;
    for (int j = 0; j < key_count; ++j) {
      accumulator += scores[j] * to_float(values[table + j * params.row_stride + d]);
    }
    out[static_cast<int64_t>(row) * params.heads * dim + head * dim + d] =
        from_float<T>(accumulator * inverse);
  }
}

}  // namespace

template <typename T>
void decode_attention(const DecodeAttentionParams& params, const T* queries, T* keys, T* values,
                      const T* new_keys, const T* new_values, T* out, cudaStream_t stream) {
  if (params.rows == 0) return;
  // Enough score space for the longest table this engine builds (checked by the caller).
  const int max_keys = 4096;
  const size_t shared = (params.head_dim + max_keys) * sizeof(float);
  dim3 grid(params.heads, params.rows);
  decode_attention_kernel<T><<<grid, kThreads, shared, stream>>>(params, queries, keys, values,
                                                                 new_keys, new_values, out);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

#define INSTANTIATE(T)                                                                         \
  template void decode_attention<T>(const DecodeAttentionParams&, const T*, T*, T*, const T*,   \
                                    const T*, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

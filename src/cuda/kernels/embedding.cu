#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/block_reduce.cuh"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"
#include "model/trocr_rules.h"

namespace trocr::cuda {
namespace {


template <typename T>
__global__ void decoder_embedding_kernel(EmbeddingParams params, const T* embed_tokens,
                                         const T* positions, T* out) {
  extern __shared__ float row[];
  __shared__ float partial[32];
  start_next_kernel();
  wait_for_previous_kernel();
  const int token = params.tokens[blockIdx.x];
  const int position = params.position.of(blockIdx.x);
  const int place = position_row(params.learned_positions, position, token, params.pad);
  const T* embedding = embed_tokens + static_cast<int64_t>(token) * params.width;
  const T* position_row = positions + static_cast<int64_t>(place) * params.width;
  T* target = out + static_cast<int64_t>(blockIdx.x) * params.width;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < params.width; i += blockDim.x) {
    // HF rounds the scaled embedding to the model's dtype before adding positions.
    const float scaled = to_float(from_float<T>(to_float(embedding[i]) * params.scale));
    row[i] = to_float(from_float<T>(scaled + to_float(position_row[i])));
    sum += row[i];
  }
  if (params.gamma == nullptr) {
    for (int i = threadIdx.x; i < params.width; i += blockDim.x) target[i] = from_float<T>(row[i]);
    return;
  }
  const float mean = block_sum(sum, partial) / params.width;
  float squares = 0.0f;
  for (int i = threadIdx.x; i < params.width; i += blockDim.x) {
    const float centered = row[i] - mean;
    squares += centered * centered;
  }
  const float inverse = rsqrtf(block_sum(squares, partial) / params.width + params.eps);
  for (int i = threadIdx.x; i < params.width; i += blockDim.x) {
    target[i] = from_float<T>((row[i] - mean) * inverse * params.gamma[i] + params.beta[i]);
  }
}

}  // namespace

template <typename T>
void decoder_embedding(const EmbeddingParams& params, const T* embed_tokens, const T* positions,
                       T* out, cudaStream_t stream) {
  if (params.rows == 0) return;
  launch_dependent(decoder_embedding_kernel<T>, params.rows, 256, params.width * sizeof(float), stream, params,
                   embed_tokens, positions, out);
}

template void decoder_embedding<float>(const EmbeddingParams&, const float*, const float*, float*,
                                       cudaStream_t);
template void decoder_embedding<__half>(const EmbeddingParams&, const __half*, const __half*,
                                        __half*, cudaStream_t);
template void decoder_embedding<__nv_bfloat16>(const EmbeddingParams&, const __nv_bfloat16*,
                                               const __nv_bfloat16*, __nv_bfloat16*, cudaStream_t);

}  // namespace trocr::cuda

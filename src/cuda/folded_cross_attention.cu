// CudaModel's cross-attention over the encoder output (greedy, --cross-attention folded): no
// per-layer K/V. Per layer, a GEMM folds W_k into the queries, folded_attention (fp16/bf16; three
// GEMMs around a softmax otherwise) attends over the encoder states, and a GEMM applies W_v.
#include <cmath>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {

template <typename T>
void CudaModel<T>::reserve_folded(int rows) {
  const int heads = config_.decoder.num_heads, width = weights_.cross_key_values.in;
  const int64_t padded = (config_.encoder.sequence_length() + 7) / 8 * 8;
  folded_queries_.grow(size_t(rows) * heads * width);
  folded_mix_.grow(size_t(rows) * heads * width);
  folded_scores_.grow(size_t(rows) * heads * padded);
  folded_probabilities_.grow(size_t(rows) * heads * padded);
  folded_partials_.grow(folded_attention_scratch_size(rows, heads, width));
}

template <typename T>
void CudaModel<T>::folded_cross_attention(int layer, int rows) {
  const DecoderConfig& d = config_.decoder;
  const int heads = d.num_heads, dim = d.d_model / heads, width = weights_.cross_key_values.in;
  const int sequence = config_.encoder.sequence_length();
  const T* key_weights = weights_.cross_key_values.weight.data() + int64_t(layer) * 2 * d.d_model * width;
  const T* value_weights = key_weights + int64_t(d.d_model) * width;
  // q'[r, h] = q[r, h] . W_k[h] (the key bias adds the same q . b_k to every key: softmax drops it).
  MatmulShape fold;
  fold.m = rows, fold.n = width, fold.k = dim, fold.b_transposed = false;
  fold.lda = d.d_model, fold.ldc = int64_t(heads) * width;
  fold.batch = heads, fold.stride_a = dim, fold.stride_b = int64_t(dim) * width, fold.stride_c = width;
  gemm_.matmul<T, T>(fold, step_query_.data(), key_weights, folded_queries_.data());
  // Per image, its heads' q' against its encoder states, then the weighted sum of the states.
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const FoldedAttentionParams attention{folded_partials_.data(), rows, heads, sequence, width, scale};
  if (!folded_attention<T>(attention, folded_queries_.data(), encoder_states_, folded_mix_.data(), stream_)) {
    folded_attention_by_gemms(rows);
  }
  // context[r, h] = mix[r, h] . W_v[h]^T (b_v is in the output projection's folded bias).
  MatmulShape unfold;
  unfold.m = rows, unfold.n = dim, unfold.k = width, unfold.lda = int64_t(heads) * width, unfold.ldc = d.d_model;
  unfold.batch = heads, unfold.stride_a = width, unfold.stride_b = int64_t(dim) * width, unfold.stride_c = dim;
  gemm_.matmul<T, T>(unfold, folded_mix_.data(), value_weights, step_context_.data());
}

template <typename T>
void CudaModel<T>::folded_attention_by_gemms(int rows) {
  const DecoderConfig& d = config_.decoder;
  const int heads = d.num_heads, dim = d.d_model / heads, width = weights_.cross_key_values.in;
  const int sequence = config_.encoder.sequence_length();
  const int64_t padded = (sequence + 7) / 8 * 8;
  MatmulShape scores;
  scores.m = heads, scores.n = sequence, scores.k = width, scores.ldc = padded;
  scores.batch = rows, scores.stride_a = int64_t(heads) * width, scores.stride_b = int64_t(sequence) * width;
  scores.stride_c = heads * padded, scores.alpha = 1.0f / std::sqrt(static_cast<float>(dim));
  gemm_.matmul<T, T>(scores, folded_queries_.data(), encoder_states_, folded_scores_.data());
  softmax_rows<T>(folded_scores_.data(), int64_t(rows) * heads, sequence, padded, folded_probabilities_.data(), stream_);
  MatmulShape mix;
  mix.m = heads, mix.n = width, mix.k = sequence, mix.b_transposed = false, mix.lda = padded;
  mix.batch = rows, mix.stride_a = heads * padded, mix.stride_b = int64_t(sequence) * width;
  mix.stride_c = int64_t(heads) * width;
  gemm_.matmul<T, T>(mix, folded_probabilities_.data(), encoder_states_, folded_mix_.data());
}

template void CudaModel<float>::folded_attention_by_gemms(int);
template void CudaModel<__half>::folded_attention_by_gemms(int);
template void CudaModel<__nv_bfloat16>::folded_attention_by_gemms(int);
template void CudaModel<float>::reserve_folded(int);
template void CudaModel<float>::folded_cross_attention(int, int);
template void CudaModel<__half>::reserve_folded(int);
template void CudaModel<__half>::folded_cross_attention(int, int);
template void CudaModel<__nv_bfloat16>::reserve_folded(int);
template void CudaModel<__nv_bfloat16>::folded_cross_attention(int, int);

}  // namespace trocr::cuda

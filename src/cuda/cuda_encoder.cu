// CudaModel's encoder: patch embedding, then the ViT/DeiT layers over chunks of images.
#include <cmath>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {

template <typename T>
void CudaModel<T>::encode(const float* pixels, int count, T* out) {
  const EncoderConfig& e = config_.encoder;
  const int hidden = e.hidden_size, sequence = e.sequence_length(), patches = e.patch_count();
  const int heads = e.num_heads, dim = hidden / heads, patch_inputs = 3 * e.patch_size * e.patch_size;
  for (int first = 0; first < count; first += kEncoderChunk) {
    const int batch = std::min(kEncoderChunk, count - first);
    const int rows = batch * sequence;
    patches_.grow(size_t(batch) * patches * patch_inputs);
    patch_embeddings_.grow(size_t(batch) * patches * hidden);
    normed_.grow(size_t(rows) * hidden);
    qkv_.grow(size_t(rows) * 3 * hidden);
    q_.grow(size_t(rows) * hidden);
    k_.grow(size_t(rows) * hidden);
    v_.grow(size_t(rows) * hidden);
    // Score rows padded to a multiple of 8 elements: cuBLASLt picks its aligned (Hopper)
    // kernels only for 16-byte-aligned leading dimensions (577 gave align1 sm75 kernels).
    const int64_t padded = (sequence + 7) / 8 * 8;
    scores_.grow(size_t(batch) * heads * sequence * padded);
    probabilities_.grow(size_t(batch) * heads * sequence * padded);
    context_.grow(size_t(rows) * hidden);
    heads_out_.grow(size_t(rows) * hidden);
    projected_.grow(size_t(rows) * hidden);
    intermediate_.grow(size_t(rows) * e.intermediate_size);
    const float* chunk_pixels = pixels + size_t(first) * 3 * e.image_height * e.image_width;
    T* states = out + size_t(first) * sequence * hidden;
    extract_patches<T>(chunk_pixels, batch, e.image_height, e.image_width, e.patch_size,
                       patches_.data(), stream_);
    linear(patches_.data(), batch * patches, weights_.patch_projection, patch_embeddings_.data());
    assemble_tokens<T>(patch_embeddings_.data(), weights_.cls_token.data(),
                       e.type == EncoderType::Deit ? weights_.distillation_token.data() : nullptr,
                       weights_.encoder_positions.data(), batch, patches, hidden, states, stream_);
    MatmulShape scores_shape;
    scores_shape.m = scores_shape.n = sequence;
    scores_shape.k = dim;
    scores_shape.batch = batch * heads;
    scores_shape.stride_a = scores_shape.stride_b = int64_t(sequence) * dim;
    scores_shape.ldc = padded;
    scores_shape.stride_c = int64_t(sequence) * padded;
    scores_shape.alpha = 1.0f / std::sqrt(static_cast<float>(dim));
    MatmulShape context_shape;
    context_shape.m = sequence;
    context_shape.n = dim;
    context_shape.k = sequence;
    context_shape.b_transposed = false;
    context_shape.lda = padded;
    context_shape.batch = batch * heads;
    context_shape.stride_a = int64_t(sequence) * padded;
    context_shape.stride_b = context_shape.stride_c = int64_t(sequence) * dim;
    for (size_t l = 0; l < weights_.encoder_layers.size(); ++l) {
      const DeviceEncoderLayer<T>& layer = weights_.encoder_layers[l];
      // Pre-LN: the previous block's output joins the residual stream, then LayerNorm.
      residual_layer_norm<T>(states, l == 0 ? nullptr : projected_.data(), normed_.data(),
                             layer.before.gamma.data(), layer.before.beta.data(), rows, hidden,
                             e.layer_norm_eps, l != 0, stream_);
      linear(normed_.data(), rows, layer.qkv, qkv_.data());
      if (!options_.fused_encoder_attention || !encoder_attention<T>(qkv_.data(), batch, sequence, heads, dim,
                                                             scores_shape.alpha, heads_out_.data(), stream_)) {
        split_heads<T>(qkv_.data(), batch, sequence, heads, dim, q_.data(), k_.data(), v_.data(), stream_);
        gemm_.matmul<T, T>(scores_shape, q_.data(), k_.data(), scores_.data());
        softmax_rows<T>(scores_.data(), int64_t(batch) * heads * sequence, sequence, padded,
                        probabilities_.data(), stream_);
        gemm_.matmul<T, T>(context_shape, probabilities_.data(), v_.data(), context_.data());
        merge_heads<T>(context_.data(), batch, sequence, heads, dim, heads_out_.data(), stream_);
      }
      linear(heads_out_.data(), rows, layer.attention_output, projected_.data());
      residual_layer_norm<T>(states, projected_.data(), normed_.data(), layer.after.gamma.data(),
                             layer.after.beta.data(), rows, hidden, e.layer_norm_eps, true, stream_);
      linear(normed_.data(), rows, layer.intermediate, intermediate_.data(), e.activation);
      linear(intermediate_.data(), rows, layer.output, projected_.data());
    }
    residual_layer_norm<T>(states, projected_.data(), states, weights_.encoder_norm.gamma.data(),
                           weights_.encoder_norm.beta.data(), rows, hidden, e.layer_norm_eps,
                           false, stream_);
  }
}

template void CudaModel<float>::encode(const float*, int, float*);
template void CudaModel<__half>::encode(const float*, int, __half*);
template void CudaModel<__nv_bfloat16>::encode(const float*, int, __nv_bfloat16*);

}  // namespace trocr::cuda

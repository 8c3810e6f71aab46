#include "cuda/encoder.h"

#include <cmath>

#include "common/check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/linear.h"

namespace trocr::cuda {
namespace {

// Score rows padded to a multiple of 8 elements: cuBLASLt picks its aligned (Hopper) kernels
// only for 16-byte-aligned leading dimensions (577 gave align1 sm75 kernels).
int64_t padded_keys(int sequence) { return (sequence + 7) / 8 * 8; }

}  // namespace

template <typename T>
CudaEncoder<T>::CudaEncoder(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm, int max_images)
    : weights_(weights),
      config_(config.encoder),
      gemm_(gemm),
      chunk_(std::max(1, std::min(kMaxChunk, max_images))),
      attention_kernel_(choose_encoder_attention(DataType<T>::dtype, config.encoder.hidden_size /
                                                                           config.encoder.num_heads)),
      products_(weights, gemm, int64_t(chunk_) * config.encoder.sequence_length(),
                std::max(config.encoder.hidden_size, config.encoder.intermediate_size)),
      graphs_(gemm.stream()) {
  const EncoderConfig& e = config_;
  const int hidden = e.hidden_size, sequence = e.sequence_length(), patches = e.patch_count();
  const size_t rows = size_t(chunk_) * sequence;
  const int head_dim = hidden / e.num_heads;
  if (attention_kernel_ == EncoderAttentionKernel::Cudnn) {
    cudnn_attention_ = std::make_unique<CudnnAttention>(DataType<T>::dtype, sequence, e.num_heads, head_dim,
                                                        1.0f / std::sqrt(static_cast<float>(head_dim)), chunk_);
  }
  patches_.resize(size_t(chunk_) * patches * 3 * e.patch_size * e.patch_size);
  patch_embeddings_.resize(size_t(chunk_) * patches * hidden);
  normed_.resize(rows * hidden);
  qkv_.resize(rows * 3 * hidden);
  heads_out_.resize(rows * hidden);
  projected_.resize(rows * hidden);
  intermediate_.resize(rows * e.intermediate_size);
  if (attention_kernel_ == EncoderAttentionKernel::Gemms) {
    q_.resize(rows * hidden);
    k_.resize(rows * hidden);
    v_.resize(rows * hidden);
    context_.resize(rows * hidden);
    scores_.resize(size_t(chunk_) * e.num_heads * sequence * padded_keys(sequence));
    probabilities_.resize(scores_.size());
  }
}

template <typename T>
void CudaEncoder<T>::attention(const T* qkv, int batch, T* out) {
  const EncoderConfig& e = config_;
  const int sequence = e.sequence_length(), heads = e.num_heads, dim = e.hidden_size / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  cudaStream_t stream = gemm_.stream();
  if (attention_kernel_ == EncoderAttentionKernel::Cudnn) {
    cudnn_attention_->run(qkv, batch, out, stream);
    return;
  }
  if (attention_kernel_ == EncoderAttentionKernel::FusedTensorCore) {
    if (!encoder_attention<T>(qkv, batch, sequence, heads, dim, scale, out, stream)) {
      fail("CUDA encoder: the fused attention refused {} heads of {}", heads, dim);
    }
    return;
  }
  const int64_t padded = padded_keys(sequence);
  MatmulShape scores;
  scores.m = scores.n = sequence;
  scores.k = dim;
  scores.batch = batch * heads;
  scores.stride_a = scores.stride_b = int64_t(sequence) * dim;
  scores.ldc = padded;
  scores.stride_c = int64_t(sequence) * padded;
  scores.alpha = scale;
  MatmulShape context;
  context.m = sequence;
  context.n = dim;
  context.k = sequence;
  context.b_transposed = false;
  context.lda = padded;
  context.batch = batch * heads;
  context.stride_a = int64_t(sequence) * padded;
  context.stride_b = context.stride_c = int64_t(sequence) * dim;
  split_heads<T>(qkv, batch, sequence, heads, dim, q_.data(), k_.data(), v_.data(), stream);
  gemm_.matmul<T, T>(scores, q_.data(), k_.data(), scores_.data());
  softmax_rows<T>(scores_.data(), int64_t(batch) * heads * sequence, sequence, padded, probabilities_.data(), stream);
  gemm_.matmul<T, T>(context, probabilities_.data(), v_.data(), context_.data());
  merge_heads<T>(context_.data(), batch, sequence, heads, dim, out, stream);
}

// Everything a captured pass depends on besides the encoder's own buffers (step_graphs.h).
template <typename T>
struct CudaEncoder<T>::Spec {
  CudaEncoder<T>* encoder;
  const float* pixels;
  T* out;
  int count;
  int unused = 0;  // no padding
};

template <typename T>
void CudaEncoder<T>::enqueue(const Spec& spec) {
  spec.encoder->encode_eagerly(spec.pixels, spec.count, spec.out);
}

template <typename T>
void CudaEncoder<T>::prepare_every_batch() {
  if (!cudnn_attention_) return;
  for (int count = 1; count <= chunk_; ++count) cudnn_attention_->prepare(count);
}

template <typename T>
void CudaEncoder<T>::encode(const float* pixels, int count, T* out) {
  if (count > chunk_) fail("CUDA encoder: {} images in a chunk of {}", count, chunk_);
  // A cuDNN plan is built outside the capture (building allocates and loads kernels).
  if (cudnn_attention_) cudnn_attention_->prepare(count);
  if (count > kMaxGraphedImages) return encode_eagerly(pixels, count, out);
  graphs_.replay(Spec{this, pixels, out, count}, &CudaEncoder<T>::enqueue);
}

template <typename T>
void CudaEncoder<T>::encode_eagerly(const float* pixels, int batch, T* states) {
  const EncoderConfig& e = config_;
  const int hidden = e.hidden_size, sequence = e.sequence_length(), patches = e.patch_count();
  const int rows = batch * sequence;
  cudaStream_t stream = gemm_.stream();
  extract_patches<T>(pixels, batch, e.image_height, e.image_width, e.patch_size, patches_.data(), stream);
  linear(gemm_, patches_.data(), batch * patches, weights_.patch_projection, patch_embeddings_.data());
  assemble_tokens<T>(patch_embeddings_.data(), weights_.cls_token.data(),
                     e.type == EncoderType::Deit ? weights_.distillation_token.data() : nullptr,
                     weights_.encoder_positions.data(), batch, patches, hidden, states, stream);
  for (size_t l = 0; l < weights_.encoder_layers.size(); ++l) {
    const DeviceEncoderLayer<T>& layer = weights_.encoder_layers[l];
    // Pre-LN: the previous block's output joins the residual stream, then LayerNorm.
    residual_layer_norm<T>(states, l == 0 ? nullptr : projected_.data(), normed_.data(), layer.before.gamma.data(),
                           layer.before.beta.data(), rows, hidden, e.layer_norm_eps, l != 0, stream);
    products_.linear(products_.stage(normed_.data(), rows, hidden), l, EncoderProduct::Qkv, qkv_.data());
    attention(qkv_.data(), batch, heads_out_.data());
    products_.linear(products_.stage(heads_out_.data(), rows, hidden), l, EncoderProduct::AttentionOutput,
                     projected_.data());
    residual_layer_norm<T>(states, projected_.data(), normed_.data(), layer.after.gamma.data(),
                           layer.after.beta.data(), rows, hidden, e.layer_norm_eps, true, stream);
    products_.linear(products_.stage(normed_.data(), rows, hidden), l, EncoderProduct::Intermediate,
                     intermediate_.data());
    // The FFN's activation is applied as the second product's input is staged.
    products_.linear(products_.stage(intermediate_.data(), rows, e.intermediate_size, e.activation), l,
                     EncoderProduct::Output, projected_.data());
  }
  residual_layer_norm<T>(states, projected_.data(), states, weights_.encoder_norm.gamma.data(),
                         weights_.encoder_norm.beta.data(), rows, hidden, e.layer_norm_eps, false, stream);
}

template class CudaEncoder<float>;
template class CudaEncoder<__half>;
template class CudaEncoder<__nv_bfloat16>;

}  // namespace trocr::cuda

// The decoder step (decoder_step.h): post-LN layers whose LayerNorms run inside the linear
// that reads them, and a cross-attention op that picks its kernel.
#include "cuda/decoder_step.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/linear.h"

namespace trocr::cuda {

template <typename T>
DecoderStep<T>::DecoderStep(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm,
                            EncoderStates<T>& states, KvCaches<T>& caches, int max_rows)
    : weights_(weights), config_(config), gemm_(gemm), states_(states), caches_(caches), max_rows_(max_rows),
      position_(std::max(1, max_rows)) {
  const DecoderConfig& d = config.decoder;
  const size_t rows = max_rows;
  tokens_.resize(rows);
  row_slots_.resize(rows);
  row_images_.resize(rows);
  group_starts_.resize(rows + 1);
  hidden_.resize(rows * d.d_model);
  hidden_alternate_.resize(rows * d.d_model);
  qkv_.resize(rows * 3 * d.d_model);
  context_.resize(rows * d.d_model);
  projected_.resize(rows * d.d_model);
  query_.resize(rows * d.d_model);
  ffn_.resize(rows * d.ffn_dim);
  logits_.resize(rows * d.vocab_size);
  const int max_keys = std::max(config.encoder.sequence_length(), caches.positions());
  attention_scratch_.resize(attention_scratch_size(max_rows, d.num_heads, d.d_model / d.num_heads, max_keys));
  // The over-encoder-states form's buffers, when a greedy search of the planned batch may take it
  // (lines in flight without per-layer K/V take it from fewer rows).
  const int images = std::min(max_rows, states.max_images());
  if (cuda::choose_cross_attention(DataType<T>::dtype, d.d_model / d.num_heads, images, true, d.d_model,
                                   weights.cross_key_values.in, /*key_values_computed=*/false) ==
      CrossAttentionKernel::OverEncoderStates) {
    const int width = weights.cross_key_values.in;
    folded_queries_.resize(rows * d.num_heads * width);
    folded_mix_.resize(rows * d.num_heads * width);
    folded_partials_.resize(folded_attention_scratch_size(max_rows, d.num_heads, width));
  }
}

template <typename T>
CrossAttentionKernel DecoderStep<T>::choose_cross_attention(int rows, bool greedy, bool key_values_computed) const {
  const DecoderConfig& d = config_.decoder;
  const CrossAttentionKernel kernel = cuda::choose_cross_attention(
      DataType<T>::dtype, d.d_model / d.num_heads, rows, greedy, d.d_model, weights_.cross_key_values.in,
      key_values_computed);
  // The constructor allocates this form's buffers when the plan's batch takes it, so only forced
  // choices changed after the workspace was made can land here: the per-layer K/V form serves.
  if (kernel == CrossAttentionKernel::OverEncoderStates && folded_queries_.empty()) {
    return cuda::choose_cross_attention(DataType<T>::dtype, d.d_model / d.num_heads, rows, false, d.d_model,
                                        weights_.cross_key_values.in, true);
  }
  return kernel;
}

template <typename T>
StepShape DecoderStep<T>::set_rows(const std::vector<int>& slots, const std::vector<int>& images, int max_keys,
                                   CrossAttentionKernel cross_attention, RowPositions positions) {
  const int rows = static_cast<int>(slots.size());
  if (rows > max_rows_ || images.size() != slots.size()) {
    fail("CUDA decoder: {} rows, planned for {}", rows, max_rows_);
  }
  if (max_keys > caches_.positions()) fail("CUDA decoder: {} positions, planned for {}", max_keys, caches_.positions());
  const std::vector<int> starts = cross_attention_groups(images);
  cudaStream_t stream = gemm_.stream();
  // assign: these buffers keep their addresses (captured steps read them).
  row_slots_.assign(slots, stream);
  row_images_.assign(images, stream);
  group_starts_.assign(starts, stream);
  if (positions == RowPositions::PerImage) {
    const int last_image = *std::max_element(images.begin(), images.end());
    if (last_image >= max_rows_) fail("CUDA decoder: image {} has no position, planned for {}", last_image, max_rows_);
  }
  return StepShape{rows, static_cast<int>(starts.size()) - 1, max_keys, cross_attention, positions};
}

template <typename T>
void DecoderStep<T>::forward(const StepShape& shape) {
  const DecoderConfig& d = config_.decoder;
  const int rows = shape.rows, width = d.d_model, heads = d.num_heads, dim = width / heads;
  cudaStream_t stream = gemm_.stream();
  const StepPositions row_positions = positions(shape);
  EmbeddingParams embedding{tokens_.data(), row_positions, rows, width,
                            d.scale_embedding ? std::sqrt(static_cast<float>(width)) : 1.0f,
                            d.use_learned_position_embeddings, config_.tokens.pad,
                            weights_.embedding_norm.gamma.empty() ? nullptr : weights_.embedding_norm.gamma.data(),
                            weights_.embedding_norm.beta.empty() ? nullptr : weights_.embedding_norm.beta.data(),
                            d.layer_norm_eps};
  decoder_embedding<T>(embedding, weights_.embed_tokens.data(), weights_.decoder_positions.data(), hidden_.data(),
                       stream);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const int cache_positions = caches_.positions();
  DecodeAttentionParams self{attention_scratch_.data(), shape.max_keys, rows, heads, dim, scale,
                             3 * int64_t(width), row_slots_.data(), int64_t(cache_positions) * width,
                             width, 0, row_positions, 3 * int64_t(width)};
  // Post-LN residual stream: each sublayer's LayerNorm(residual + delta) is left pending and
  // applied by the linear that reads it (one kernel for a few rows). The stream alternates
  // between two buffers, since the normalized rows are written while the old ones are read.
  T* residual = hidden_.data();
  T* spare = hidden_alternate_.data();
  const DeviceNorm* pending = nullptr;  // applies to residual + projected_
  // Applies the pending LayerNorm: fused into the linear y = activation(x W^T + b) that reads it
  // when small_linear_normed takes the shape (then true: y is done), else as its own kernel.
  const auto apply_pending = [&](const T* weight, const auto* bias, int out, auto* y,
                                 std::optional<Activation> activation) {
    using TOut = std::remove_pointer_t<decltype(y)>;
    const NormedInput<T> input{residual, projected_.data(), pending->gamma.data(), pending->beta.data(),
                               d.layer_norm_eps, spare};
    const bool fused = small_linear_normed<T, TOut>(input, weight, bias, y, rows, out, width, activation, stream);
    if (!fused) {
      residual_layer_norm<T>(residual, projected_.data(), spare, pending->gamma.data(), pending->beta.data(), rows,
                             width, d.layer_norm_eps, false, stream);
    }
    std::swap(residual, spare);
    pending = nullptr;
    return fused;
  };
  const auto layer_linear = [&](const DeviceLinear<T>& layer, T* y, std::optional<Activation> activation = {}) {
    const T* bias = layer.bias_or_null();
    if (pending != nullptr && apply_pending(layer.weight.data(), bias, layer.out, y, activation)) return;
    linear(gemm_, residual, rows, layer, y, activation);
  };
  for (int l = 0; l < d.num_layers; ++l) {
    const DeviceDecoderLayer<T>& layer = weights_.decoder_layers[l];
    layer_linear(layer.self_qkv, qkv_.data());
    decode_attention<T>(self, qkv_.data(), caches_.keys(l), caches_.values(l), qkv_.data() + width,
                        qkv_.data() + 2 * width, context_.data(), stream);
    linear(gemm_, context_.data(), rows, layer.self_output, projected_.data());
    pending = &layer.self_norm;
    layer_linear(layer.cross_query, query_.data());
    cross_attention(l, shape);
    const bool folded = shape.cross_attention == CrossAttentionKernel::OverEncoderStates;
    linear(gemm_, context_.data(), rows, layer.cross_output, projected_.data(), {},
           folded ? layer.cross_output_folded_bias.data() : nullptr);
    pending = &layer.cross_norm;
    layer_linear(layer.fc1, ffn_.data(), d.activation);
    linear(gemm_, ffn_.data(), rows, layer.fc2, projected_.data());
    pending = &layer.final_norm;
  }
  const T* projection = weights_.output_projection.data();
  if (apply_pending(projection, static_cast<const float*>(nullptr), d.vocab_size, logits_.data(), std::nullopt)) return;
  logits_projection(gemm_, residual, rows, projection, d.vocab_size, width, logits_.data());
}

// query_ -> context_ for layer `layer`: the chosen kernel over the per-layer K/V, or over the
// encoder states themselves.
template <typename T>
void DecoderStep<T>::cross_attention(int layer, const StepShape& shape) {
  const DecoderConfig& d = config_.decoder;
  const int width = d.d_model, heads = d.num_heads, dim = width / heads, layers = d.num_layers;
  const int sequence = config_.encoder.sequence_length();
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const T* keys = states_.key_values() + int64_t(layer) * 2 * width;
  const int64_t image_stride = int64_t(sequence) * layers * 2 * width, key_stride = int64_t(layers) * 2 * width;
  cudaStream_t stream = gemm_.stream();
  switch (shape.cross_attention) {
    case CrossAttentionKernel::GroupedTensorCore: {
      const CrossAttentionParams grouped{attention_scratch_.data(), shape.rows, shape.groups, group_starts_.data(),
                                         row_images_.data(), heads, dim, sequence, scale, width, image_stride,
                                         key_stride};
      if (!cuda::cross_attention<T>(grouped, query_.data(), keys, keys + width, context_.data(), stream)) {
        fail("CUDA decoder: the grouped cross-attention refused heads of {}", dim);
      }
      return;
    }
    case CrossAttentionKernel::Chunked: {
      const DecodeAttentionParams chunked{attention_scratch_.data(), sequence, shape.rows, heads, dim, scale, width,
                                          row_images_.data(), image_stride, key_stride, sequence, {}, 0};
      decode_attention<T>(chunked, query_.data(), const_cast<T*>(keys), const_cast<T*>(keys + width), nullptr,
                          nullptr, context_.data(), stream);
      return;
    }
    case CrossAttentionKernel::OverEncoderStates:
      attention_over_encoder_states(layer, shape.rows);
      return;
  }
}

// Cross-attention over the encoder states, without per-layer K/V: a GEMM folds W_k into the
// queries, folded_attention attends over the states, and a GEMM applies W_v (its bias is in
// cross_output_folded_bias: softmax weights sum to 1).
template <typename T>
void DecoderStep<T>::attention_over_encoder_states(int layer, int rows) {
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
  gemm_.matmul<T, T>(fold, query_.data(), key_weights, folded_queries_.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const FoldedAttentionParams attention{folded_partials_.data(), rows, heads, sequence, width, scale, row_images_.data()};
  if (!folded_attention<T>(attention, folded_queries_.data(), states_.states_by_slot(), folded_mix_.data(),
                           gemm_.stream())) {
    fail("CUDA decoder: the attention over encoder states refused a width of {}", width);
  }
  // context[r, h] = mix[r, h] . W_v[h]^T
  MatmulShape unfold;
  unfold.m = rows, unfold.n = dim, unfold.k = width, unfold.lda = int64_t(heads) * width, unfold.ldc = d.d_model;
  unfold.batch = heads, unfold.stride_a = width, unfold.stride_b = int64_t(dim) * width, unfold.stride_c = dim;
  gemm_.matmul<T, T>(unfold, folded_mix_.data(), value_weights, context_.data());
}

template class DecoderStep<float>;
template class DecoderStep<__half>;
template class DecoderStep<__nv_bfloat16>;

}  // namespace trocr::cuda

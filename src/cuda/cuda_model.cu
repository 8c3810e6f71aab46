#include <cmath>
#include <map>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

template <typename T>
void ensure(DeviceBuffer<T>& buffer, size_t count) {
  if (buffer.size() < count) buffer.resize(count);
}

}  // namespace

template <typename T>
CudaModel<T>::CudaModel(const DeviceWeights<T>& weights, const ModelConfig& config,
                        cudaStream_t stream, const BackendOptions& options)
    : weights_(weights), config_(config), stream_(stream), options_(options),
      gemm_(stream), position_(1) {}

template <typename T>
CudaModel<T>::~CudaModel() {
  for (auto& entry : graphs_) cudaGraphExecDestroy(entry.second);
}

template <typename T>
int CudaModel<T>::max_keys() const {
  return std::max(config_.encoder.sequence_length(), max_length());
}

template <typename T>
void CudaModel<T>::set_cache_length(int length) {
  if (length < 1 || length > max_length()) {
    fail("CUDA decoder: {} positions requested, the model has {}", length, max_length());
  }
  cache_length_ = length;
}

template <typename T>
void CudaModel<T>::linear(const T* x, int rows, const DeviceLinear<T>& layer, T* y,
                          std::optional<Activation> activation, const T* bias_override) {
  const T* bias = bias_override != nullptr ? bias_override : layer.bias.empty() ? nullptr : layer.bias.data();
  if (small_linear<T, T>(x, layer.weight.data(), bias, y, rows, layer.out, layer.in, activation, stream_)) return;
  MatmulShape shape;
  shape.m = rows;
  shape.n = layer.out;
  shape.k = layer.in;
  // cuBLASLt's GELU epilogue is the tanh form: erf GELU (HF's "gelu") is a separate pass.
  Epilogue epilogue = Epilogue::Bias;
  if (activation == Activation::Relu) epilogue = Epilogue::ReluBias;
  if (activation == Activation::GeluTanh) epilogue = Epilogue::GeluTanhBias;
  gemm_.matmul<T, T>(shape, x, layer.weight.data(), y, bias, epilogue);
  if (activation == Activation::Gelu) apply_activation<T>(y, int64_t(rows) * layer.out, Activation::Gelu, stream_);
}

template <typename T>
void CudaModel<T>::replay(GraphKey key, const std::function<void()>& enqueue) {
  auto found = graphs_.find(key);
  if (found == graphs_.end()) {
    // Beam search meets a new row count whenever an image finishes: keep a bounded set.
    constexpr size_t kMaxGraphs = 64;
    if (graphs_.size() >= kMaxGraphs) {
      for (auto& entry : graphs_) cudaGraphExecDestroy(entry.second);
      graphs_.clear();
    }
    cudaGraph_t graph;
    TROCR_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    enqueue();
    TROCR_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t executable;
    const cudaError_t status = cudaGraphInstantiate(&executable, graph, 0);
    cudaGraphDestroy(graph);
    TROCR_CUDA_CHECK(status);
    found = graphs_.emplace(std::move(key), executable).first;
  }
  TROCR_CUDA_CHECK(cudaGraphLaunch(found->second, stream_));
}

template <typename T>
std::vector<const void*> CudaModel<T>::step_addresses(std::initializer_list<const void*> extra) const {
  std::vector<const void*> addresses(extra);
  addresses.insert(addresses.end(), {
      position_.data(), tokens_.data(), row_slots_.data(), row_images_.data(), group_starts_.data(),
      hidden_.data(), hidden_alternate_.data(), step_qkv_.data(), step_context_.data(), step_projected_.data(), step_query_.data(),
      step_ffn_.data(), logits_.data(), attention_scratch_.data(), cross_kv_.data()});
  for (int l = 0; l < config_.decoder.num_layers; ++l) {
    addresses.push_back(key_cache_[l].data());
    addresses.push_back(value_cache_[l].data());
  }
  return addresses;
}

template <typename T>
void CudaModel<T>::encode(const float* pixels, int count, T* out) {
  const EncoderConfig& e = config_.encoder;
  const int hidden = e.hidden_size, sequence = e.sequence_length(), patches = e.patch_count();
  const int heads = e.num_heads, dim = hidden / heads, patch_inputs = 3 * e.patch_size * e.patch_size;
  for (int first = 0; first < count; first += kEncoderChunk) {
    const int batch = std::min(kEncoderChunk, count - first);
    const int rows = batch * sequence;
    ensure(patches_, size_t(batch) * patches * patch_inputs);
    ensure(patch_embeddings_, size_t(batch) * patches * hidden);
    ensure(normed_, size_t(rows) * hidden);
    ensure(qkv_, size_t(rows) * 3 * hidden);
    ensure(q_, size_t(rows) * hidden);
    ensure(k_, size_t(rows) * hidden);
    ensure(v_, size_t(rows) * hidden);
    // Score rows padded to a multiple of 8 elements: cuBLASLt picks its aligned (Hopper)
    // kernels only for 16-byte-aligned leading dimensions (577 gave align1 sm75 kernels).
    const int64_t padded = (sequence + 7) / 8 * 8;
    ensure(scores_, size_t(batch) * heads * sequence * padded);
    ensure(probabilities_, size_t(batch) * heads * sequence * padded);
    ensure(context_, size_t(rows) * hidden);
    ensure(heads_out_, size_t(rows) * hidden);
    ensure(projected_, size_t(rows) * hidden);
    ensure(intermediate_, size_t(rows) * e.intermediate_size);
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

template <typename T>
void CudaModel<T>::set_encoder_output(const T* encoder_hidden, int images, bool greedy_only) {
  const int sequence = config_.encoder.sequence_length();
  const int rows = images * sequence;
  const T* source = encoder_hidden;
  if (weights_.encoder_to_decoder) {
    ensure(projected_encoder_, size_t(rows) * config_.decoder.d_model);
    linear(encoder_hidden, rows, *weights_.encoder_to_decoder, projected_encoder_.data());
    source = projected_encoder_.data();
  }
  encoder_states_ = source;
  images_ = images;
  cross_kv_ready_ = !(greedy_only && options_.folded_cross_attention);
  if (!cross_kv_ready_) return;
  ensure(cross_kv_, size_t(rows) * weights_.cross_key_values.out);
  linear(source, rows, weights_.cross_key_values, cross_kv_.data());
}

template <typename T>
void CudaModel<T>::reserve_folded(int rows) {
  const int heads = config_.decoder.num_heads, width = weights_.cross_key_values.in;
  const int64_t padded = (config_.encoder.sequence_length() + 7) / 8 * 8;
  ensure(folded_queries_, size_t(rows) * heads * width);
  ensure(folded_mix_, size_t(rows) * heads * width);
  ensure(folded_scores_, size_t(rows) * heads * padded);
  ensure(folded_probabilities_, size_t(rows) * heads * padded);
}

template <typename T>
void CudaModel<T>::folded_cross_attention(int layer, int rows) {
  const DecoderConfig& d = config_.decoder;
  const int heads = d.num_heads, dim = d.d_model / heads, width = weights_.cross_key_values.in;
  const int sequence = config_.encoder.sequence_length();
  const int64_t padded = (sequence + 7) / 8 * 8;
  const T* key_weights = weights_.cross_key_values.weight.data() + int64_t(layer) * 2 * d.d_model * width;
  const T* value_weights = key_weights + int64_t(d.d_model) * width;
  // q'[r, h] = q[r, h] . W_k[h] (the key bias adds the same q . b_k to every key: softmax drops it).
  MatmulShape fold;
  fold.m = rows, fold.n = width, fold.k = dim, fold.b_transposed = false;
  fold.lda = d.d_model, fold.ldc = int64_t(heads) * width;
  fold.batch = heads, fold.stride_a = dim, fold.stride_b = int64_t(dim) * width, fold.stride_c = width;
  gemm_.matmul<T, T>(fold, step_query_.data(), key_weights, folded_queries_.data());
  // Per image, its heads' q' against its encoder states, then the weighted sum of the states.
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
  // context[r, h] = mix[r, h] . W_v[h]^T (b_v is in the output projection's folded bias).
  MatmulShape unfold;
  unfold.m = rows, unfold.n = dim, unfold.k = width, unfold.lda = int64_t(heads) * width, unfold.ldc = d.d_model;
  unfold.batch = heads, unfold.stride_a = width, unfold.stride_b = int64_t(dim) * width, unfold.stride_c = dim;
  gemm_.matmul<T, T>(unfold, folded_mix_.data(), value_weights, step_context_.data());
}

template <typename T>
void CudaModel<T>::reserve_rows(int rows) {
  if (rows <= row_capacity_) return;
  const DecoderConfig& d = config_.decoder;
  tokens_.resize(rows);
  row_slots_.resize(rows);
  row_images_.resize(rows);
  group_starts_.resize(rows + 1);
  hidden_.resize(size_t(rows) * d.d_model);
  hidden_alternate_.resize(size_t(rows) * d.d_model);
  step_qkv_.resize(size_t(rows) * 3 * d.d_model);
  step_context_.resize(size_t(rows) * d.d_model);
  step_projected_.resize(size_t(rows) * d.d_model);
  step_query_.resize(size_t(rows) * d.d_model);
  step_ffn_.resize(size_t(rows) * d.ffn_dim);
  logits_.resize(size_t(rows) * d.vocab_size);
  attention_scratch_.resize(attention_scratch_size(rows, d.num_heads, d.d_model / d.num_heads, max_keys()));
  row_capacity_ = rows;
}

template <typename T>
void CudaModel<T>::begin(const std::vector<int>& slot_sources) {
  for (int source : slot_sources) {
    if (source < 0 || source >= images_) fail("CUDA decoder: slot reads image {} of {}", source, images_);
  }
  slot_sources_ = slot_sources;
  slots_ = static_cast<int>(slot_sources.size());
  slot_images_.upload(slot_sources, stream_);
  if (cache_length_ == 0) cache_length_ = max_length();
  const size_t cache = size_t(slots_) * cache_length_ * config_.decoder.d_model;
  key_cache_.resize(config_.decoder.num_layers);
  value_cache_.resize(config_.decoder.num_layers);
  for (int l = 0; l < config_.decoder.num_layers; ++l) {
    ensure(key_cache_[l], cache);
    ensure(value_cache_[l], cache);
  }
  reserve_rows(slots_);
}

template <typename T>
void CudaModel<T>::forward(int rows) {
  const DecoderConfig& d = config_.decoder;
  const int width = d.d_model, heads = d.num_heads, dim = width / heads;
  const int sequence = config_.encoder.sequence_length();
  const int layers = d.num_layers;
  EmbeddingParams embedding{tokens_.data(), position_.data(), rows, width,
                            d.scale_embedding ? std::sqrt(static_cast<float>(width)) : 1.0f,
                            d.use_learned_position_embeddings, config_.tokens.pad,
                            weights_.embedding_norm.gamma.empty() ? nullptr : weights_.embedding_norm.gamma.data(),
                            weights_.embedding_norm.beta.empty() ? nullptr : weights_.embedding_norm.beta.data(),
                            d.layer_norm_eps};
  decoder_embedding<T>(embedding, weights_.embed_tokens.data(), weights_.decoder_positions.data(),
                       hidden_.data(), stream_);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  DecodeAttentionParams self{attention_scratch_.data(), cache_length_, rows, heads, dim, scale,
                             3 * int64_t(width), row_slots_.data(), int64_t(cache_length_) * width,
                             width, 0, position_.data(), 3 * int64_t(width)};
  CrossAttentionParams grouped{attention_scratch_.data(), rows, groups_, group_starts_.data(), row_images_.data(),
                               heads, dim, sequence, scale, width, int64_t(sequence) * layers * 2 * width,
                               int64_t(layers) * 2 * width};
  DecodeAttentionParams cross{attention_scratch_.data(), sequence, rows, heads, dim, scale, width,
                              row_images_.data(), int64_t(sequence) * layers * 2 * width,
                              int64_t(layers) * 2 * width, sequence, nullptr, 0};
  // Post-LN residual stream: each sublayer's LayerNorm(residual + delta) is left pending and
  // applied by the linear that reads it (one kernel for a few rows). The stream alternates
  // between two buffers, since the normalized rows are written while the old ones are read.
  T* residual = hidden_.data();
  T* spare = hidden_alternate_.data();
  const DeviceNorm* pending = nullptr;  // applies to residual + step_projected_
  // Applies the pending LayerNorm: fused into the linear y = activation(x W^T + b) that reads it
  // when small_linear_normed takes the shape (then true: y is done), else as its own kernel.
  const auto apply_pending = [&](const T* weight, const auto* bias, int out, auto* y,
                                 std::optional<Activation> activation) {
    using TOut = std::remove_pointer_t<decltype(y)>;
    const NormedInput<T> input{residual, step_projected_.data(), pending->gamma.data(), pending->beta.data(),
                               d.layer_norm_eps, spare};
    const bool fused = small_linear_normed<T, TOut>(input, weight, bias, y, rows, out, width, activation, stream_);
    if (!fused) {
      residual_layer_norm<T>(residual, step_projected_.data(), spare, pending->gamma.data(), pending->beta.data(),
                             rows, width, d.layer_norm_eps, false, stream_);
    }
    std::swap(residual, spare);
    pending = nullptr;
    return fused;
  };
  const auto layer_linear = [&](const DeviceLinear<T>& layer, T* y, std::optional<Activation> activation = {}) {
    const T* bias = layer.bias.empty() ? nullptr : layer.bias.data();
    if (pending != nullptr && apply_pending(layer.weight.data(), bias, layer.out, y, activation)) return;
    linear(residual, rows, layer, y, activation);
  };
  for (int l = 0; l < layers; ++l) {
    const DeviceDecoderLayer<T>& layer = weights_.decoder_layers[l];
    layer_linear(layer.self_qkv, step_qkv_.data());
    decode_attention<T>(self, step_qkv_.data(), key_cache_[l].data(), value_cache_[l].data(),
                        step_qkv_.data() + width, step_qkv_.data() + 2 * width,
                        step_context_.data(), stream_);
    linear(step_context_.data(), rows, layer.self_output, step_projected_.data());
    pending = &layer.self_norm;
    layer_linear(layer.cross_query, step_query_.data());
    if (folded_step_) {
      folded_cross_attention(l, rows);
      linear(step_context_.data(), rows, layer.cross_output, step_projected_.data(), {},
             layer.cross_output_folded_bias.data());
    } else {
      T* cross_keys = cross_kv_.data() + int64_t(l) * 2 * width;
      if (!options_.grouped_cross_attention ||
          !cross_attention<T>(grouped, step_query_.data(), cross_keys, cross_keys + width, step_context_.data(),
                              stream_)) {
        decode_attention<T>(cross, step_query_.data(), cross_keys, cross_keys + width, nullptr, nullptr,
                            step_context_.data(), stream_);
      }
      linear(step_context_.data(), rows, layer.cross_output, step_projected_.data());
    }
    pending = &layer.cross_norm;
    layer_linear(layer.fc1, step_ffn_.data(), d.activation);
    linear(step_ffn_.data(), rows, layer.fc2, step_projected_.data());
    pending = &layer.final_norm;
  }
  const T* projection = weights_.output_projection.data();
  if (pending != nullptr &&
      apply_pending(projection, static_cast<const float*>(nullptr), d.vocab_size, logits_.data(), std::nullopt)) {
    return;
  }
  if (!small_linear<T, float>(residual, projection, nullptr, logits_.data(), rows, d.vocab_size, width, std::nullopt,
                              stream_)) {
    MatmulShape logits_shape;
    logits_shape.m = rows;
    logits_shape.n = d.vocab_size;
    logits_shape.k = width;
    gemm_.matmul<T, float>(logits_shape, residual, projection, logits_.data());
  }
}

template <typename T>
void CudaModel<T>::prepare_rows(const std::vector<int>& slots, const std::vector<int>& tokens, int position) {
  if (!cross_kv_ready_) fail("CUDA decoder: steps need the cross-attention K/V (set_encoder_output without greedy_only)");
  const int rows = static_cast<int>(slots.size());
  reserve_rows(rows);
  std::vector<int> images(rows);
  for (int i = 0; i < rows; ++i) images[i] = slot_sources_.at(slots[i]);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), tokens.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(row_slots_.data(), slots.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(row_images_.data(), images.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(position_.data(), &position, sizeof(int), cudaMemcpyHostToDevice, stream_));
  const std::vector<int> starts = cross_attention_groups(images);
  groups_ = static_cast<int>(starts.size()) - 1;
  TROCR_CUDA_CHECK(cudaMemcpyAsync(group_starts_.data(), starts.data(), starts.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
  // Pageable sources: the copies must finish before the host vectors go away.
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <typename T>
bool CudaModel<T>::step_top_k(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
                              const std::vector<std::vector<int>>& banned,
                              const std::vector<float>& running_scores, int k,
                              std::vector<float>* values, std::vector<int>* token_ids) {
  if (k > kMaxBeamTopK || k > vocab_size()) return false;
  const int rows = static_cast<int>(slots.size());
  prepare_rows(slots, tokens, position);
  // Padded to a power of two: the width is baked into the step's graph.
  size_t max_banned = 1;
  for (const auto& list : banned) {
    while (max_banned < list.size()) max_banned *= 2;
  }
  std::vector<int> banned_table(rows * max_banned, -1);
  for (int r = 0; r < rows; ++r) std::copy(banned[r].begin(), banned[r].end(), banned_table.begin() + r * max_banned);
  ensure(beam_banned_, banned_table.size());
  ensure(beam_running_, rows);
  ensure(beam_values_, size_t(rows) * k);
  ensure(beam_tokens_, size_t(rows) * k);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(beam_banned_.data(), banned_table.data(), banned_table.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(beam_running_.data(), running_scores.data(), rows * sizeof(float), cudaMemcpyHostToDevice, stream_));
  BeamTopKParams params{rows, vocab_size(), k, beam_banned_.data(), static_cast<int>(max_banned),
                        beam_running_.data(), beam_values_.data(), beam_tokens_.data()};
  const auto addresses =
      step_addresses({beam_banned_.data(), beam_running_.data(), beam_values_.data(), beam_tokens_.data()});
  const std::vector<int> settings = {1, rows, k, static_cast<int>(max_banned), cache_length_, groups_};
  replay({addresses, settings}, [&] {
    forward(rows);
    beam_top_k(params, logits_.data(), stream_);
  });
  values->resize(size_t(rows) * k);
  token_ids->resize(size_t(rows) * k);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(values->data(), beam_values_.data(), values->size() * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(token_ids->data(), beam_tokens_.data(), token_ids->size() * sizeof(int), cudaMemcpyDeviceToHost, stream_));
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return true;
}

template <typename T>
void CudaModel<T>::step(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
                        float* logits) {
  const int rows = static_cast<int>(slots.size());
  prepare_rows(slots, tokens, position);
  forward(rows);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(logits, logits_.data(), size_t(rows) * vocab_size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_));
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <typename T>
void CudaModel<T>::reorder(const std::vector<int>& slots, const std::vector<int>& sources, int position) {
  if (slots.empty() || position == 0) return;
  const int count = static_cast<int>(slots.size());
  ensure(reorder_targets_, count);
  ensure(reorder_sources_, count);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(reorder_targets_.data(), slots.data(), count * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(reorder_sources_.data(), sources.data(), count * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  const int64_t width = config_.decoder.d_model;
  const int64_t length = int64_t(position) * width;
  ensure(cache_scratch_, size_t(count) * length);
  for (int l = 0; l < config_.decoder.num_layers; ++l) {
    for (auto* cache : {&key_cache_[l], &value_cache_[l]}) {
      reorder_cache<T>(cache->data(), int64_t(cache_length_) * width, reorder_targets_.data(),
                       reorder_sources_.data(), count, length, cache_scratch_.data(), stream_);
    }
  }
}

template <typename T>
typename CudaModel<T>::GreedyResult CudaModel<T>::greedy(int images, int max_length, int min_length,
                                                         int no_repeat_ngram_size, int decoder_start,
                                                         int eos, int pad) {
  std::vector<int> identity(images);
  for (int i = 0; i < images; ++i) identity[i] = i;
  begin(identity);
  // Copies, not upload(): these buffers keep the capacity reserve_rows gave them.
  TROCR_CUDA_CHECK(cudaMemcpyAsync(row_slots_.data(), identity.data(), images * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(row_images_.data(), identity.data(), images * sizeof(int), cudaMemcpyHostToDevice, stream_));
  const std::vector<int> starts = cross_attention_groups(identity);  // a group per row
  groups_ = images;
  TROCR_CUDA_CHECK(cudaMemcpyAsync(group_starts_.data(), starts.data(), starts.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
  std::vector<int> history(size_t(images) * max_length, pad);
  for (int i = 0; i < images; ++i) history[size_t(i) * max_length] = decoder_start;
  ensure(greedy_history_, history.size());
  ensure(greedy_finished_, images);
  ensure(greedy_sum_log_, images);
  ensure(greedy_sum_probability_, images);
  ensure(greedy_min_probability_, images);
  const std::vector<float> zeros(images, 0.0f), ones(images, 1.0f);
  const std::vector<int> not_finished(images, 0);
  auto copy = [&](auto* device, const auto& host) {
    TROCR_CUDA_CHECK(cudaMemcpyAsync(device, host.data(), host.size() * sizeof(host[0]), cudaMemcpyHostToDevice, stream_));
  };
  copy(greedy_history_.data(), history);
  copy(greedy_finished_.data(), not_finished);
  copy(greedy_sum_log_.data(), zeros);
  copy(greedy_sum_probability_.data(), zeros);
  copy(greedy_min_probability_.data(), ones);
  const int zero = 0;
  TROCR_CUDA_CHECK(cudaMemcpyAsync(position_.data(), &zero, sizeof zero, cudaMemcpyHostToDevice, stream_));
  GreedyParams params{images, row_images_.data(), vocab_size(), max_length, min_length, eos, pad,
                      no_repeat_ngram_size, position_.data(), greedy_history_.data(), greedy_finished_.data(),
                      greedy_sum_log_.data(), greedy_sum_probability_.data(), greedy_min_probability_.data()};
  // One decode step as a CUDA graph: its ~150 launches replay with one call.
  folded_step_ = options_.folded_cross_attention;
  if (folded_step_) reserve_folded(images);
  const auto addresses = step_addresses({greedy_history_.data(), greedy_finished_.data(), greedy_sum_log_.data(),
                                         greedy_sum_probability_.data(), greedy_min_probability_.data(),
                                         encoder_states_, folded_queries_.data(), folded_scores_.data(),
                                         folded_probabilities_.data(), folded_mix_.data()});
  const auto enqueue_step = [&] {
    gather_last_tokens(greedy_history_.data(), row_images_.data(), params.rows, max_length, position_.data(),
                       tokens_.data(), stream_);
    forward(params.rows);
    greedy_select(params, logits_.data(), stream_);
    advance_position(position_.data(), stream_);
  };
  // Rows are images; when a quarter of them have finished, the batch shrinks to the rest (a new
  // graph, for the new row count). The folded cross-attention needs every image in its row.
  std::vector<int> active = identity, done(images);
  constexpr int kCheckEvery = 4;
  for (int step = 0; step + 1 < max_length; ++step) {
    const std::vector<int> settings = {0, params.rows, max_length, min_length, no_repeat_ngram_size, eos, pad,
                                       cache_length_, groups_, folded_step_ ? 1 : 0};
    replay({addresses, settings}, enqueue_step);
    if ((step + 1) % kCheckEvery != 0) continue;
    TROCR_CUDA_CHECK(cudaMemcpyAsync(done.data(), greedy_finished_.data(), images * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<int> unfinished;
    for (int image : active) {
      if (done[image] == 0) unfinished.push_back(image);
    }
    if (unfinished.empty()) break;
    if (folded_step_ || unfinished.size() * 4 > active.size() * 3) continue;
    active = std::move(unfinished);
    params.rows = groups_ = static_cast<int>(active.size());
    const std::vector<int> starts = cross_attention_groups(active);  // a group per row
    copy(row_slots_.data(), active);
    copy(row_images_.data(), active);
    copy(group_starts_.data(), starts);
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));  // before the host vectors change
  }
  folded_step_ = false;
  GreedyResult result;
  auto download = [&](auto& host, const auto* device) {
    TROCR_CUDA_CHECK(cudaMemcpyAsync(host.data(), device, host.size() * sizeof(host[0]), cudaMemcpyDeviceToHost, stream_));
  };
  result.sum_log_probability.resize(images);
  result.sum_probability.resize(images);
  result.min_probability.resize(images);
  download(history, greedy_history_.data());
  download(result.sum_log_probability, greedy_sum_log_.data());
  download(result.sum_probability, greedy_sum_probability_.data());
  download(result.min_probability, greedy_min_probability_.data());
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (int i = 0; i < images; ++i) {
    std::vector<int> ids = {decoder_start};
    for (int t = 1; t < max_length; ++t) {
      ids.push_back(history[size_t(i) * max_length + t]);
      if (ids.back() == eos) break;
    }
    result.ids.push_back(std::move(ids));
  }
  return result;
}

template class CudaModel<float>;
template class CudaModel<__half>;
template class CudaModel<__nv_bfloat16>;

}  // namespace trocr::cuda

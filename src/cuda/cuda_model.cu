#include <cmath>
#include <map>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

// Encoder chunks bound the attention score buffer (chunk * heads * S * S fp32 values).
constexpr int kEncoderChunk = 32;

template <typename T>
void ensure(DeviceBuffer<T>& buffer, size_t count) {
  if (buffer.size() < count) buffer.resize(count);
}

}  // namespace

template <typename T>
CudaModel<T>::CudaModel(const DeviceWeights<T>& weights, const ModelConfig& config,
                        cudaStream_t stream, bool fused_encoder_attention)
    : weights_(weights), config_(config), stream_(stream), fused_encoder_attention_(fused_encoder_attention),
      gemm_(stream), position_(1) {}

template <typename T>
CudaModel<T>::~CudaModel() {
  if (captured_.executable != nullptr) cudaGraphExecDestroy(captured_.executable);
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
                          Epilogue epilogue) {
  const T* bias = layer.bias.empty() ? nullptr : layer.bias.data();
  if ((epilogue == Epilogue::Bias || epilogue == Epilogue::ReluBias) &&
      small_linear<T, T>(x, layer.weight.data(), bias, y, rows, layer.out, layer.in,
                         epilogue == Epilogue::ReluBias, stream_)) {
    return;
  }
  MatmulShape shape;
  shape.m = rows;
  shape.n = layer.out;
  shape.k = layer.in;
  gemm_.matmul<T, T>(shape, x, layer.weight.data(), y, layer.bias.empty() ? nullptr : layer.bias.data(),
                     epilogue);
}

template <typename T>
void CudaModel<T>::encode(const float* pixels, int count, T* out) {
  const EncoderConfig& e = config_.encoder;
  const int hidden = e.hidden_size, sequence = e.sequence_length(), patches = e.patch_count();
  const int heads = e.num_heads, dim = hidden / heads, patch_inputs = 3 * e.patch_size * e.patch_size;
  const bool relu = e.activation == Activation::Relu;
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
      if (!fused_encoder_attention_ || !encoder_attention<T>(qkv_.data(), batch, sequence, heads, dim,
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
      linear(normed_.data(), rows, layer.intermediate, intermediate_.data(),
             relu ? Epilogue::ReluBias : Epilogue::Bias);
      if (!relu) apply_activation<T>(intermediate_.data(), int64_t(rows) * e.intermediate_size, e.activation, stream_);
      linear(intermediate_.data(), rows, layer.output, projected_.data());
    }
    residual_layer_norm<T>(states, projected_.data(), states, weights_.encoder_norm.gamma.data(),
                           weights_.encoder_norm.beta.data(), rows, hidden, e.layer_norm_eps,
                           false, stream_);
  }
}

template <typename T>
void CudaModel<T>::set_encoder_output(const T* encoder_hidden, int images) {
  const int sequence = config_.encoder.sequence_length();
  const int rows = images * sequence;
  const T* source = encoder_hidden;
  if (weights_.encoder_to_decoder) {
    ensure(projected_encoder_, size_t(rows) * config_.decoder.d_model);
    linear(encoder_hidden, rows, *weights_.encoder_to_decoder, projected_encoder_.data());
    source = projected_encoder_.data();
  }
  ensure(cross_kv_, size_t(rows) * weights_.cross_key_values.out);
  linear(source, rows, weights_.cross_key_values, cross_kv_.data());
  images_ = images;
}

template <typename T>
void CudaModel<T>::reserve_rows(int rows) {
  if (rows <= row_capacity_) return;
  const DecoderConfig& d = config_.decoder;
  tokens_.resize(rows);
  row_slots_.resize(rows);
  row_images_.resize(rows);
  hidden_.resize(size_t(rows) * d.d_model);
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
  DecodeAttentionParams cross{attention_scratch_.data(), sequence, rows, heads, dim, scale, width,
                              row_images_.data(), int64_t(sequence) * layers * 2 * width,
                              int64_t(layers) * 2 * width, sequence, nullptr, 0};
  const bool relu = d.activation == Activation::Relu;
  for (int l = 0; l < layers; ++l) {
    const DeviceDecoderLayer<T>& layer = weights_.decoder_layers[l];
    linear(hidden_.data(), rows, layer.self_qkv, step_qkv_.data());
    decode_attention<T>(self, step_qkv_.data(), key_cache_[l].data(), value_cache_[l].data(),
                        step_qkv_.data() + width, step_qkv_.data() + 2 * width,
                        step_context_.data(), stream_);
    linear(step_context_.data(), rows, layer.self_output, step_projected_.data());
    residual_layer_norm<T>(hidden_.data(), step_projected_.data(), hidden_.data(),
                           layer.self_norm.gamma.data(), layer.self_norm.beta.data(), rows, width,
                           d.layer_norm_eps, false, stream_);
    linear(hidden_.data(), rows, layer.cross_query, step_query_.data());
    T* cross_keys = cross_kv_.data() + int64_t(l) * 2 * width;
    decode_attention<T>(cross, step_query_.data(), cross_keys, cross_keys + width, nullptr, nullptr,
                        step_context_.data(), stream_);
    linear(step_context_.data(), rows, layer.cross_output, step_projected_.data());
    residual_layer_norm<T>(hidden_.data(), step_projected_.data(), hidden_.data(),
                           layer.cross_norm.gamma.data(), layer.cross_norm.beta.data(), rows,
                           width, d.layer_norm_eps, false, stream_);
    linear(hidden_.data(), rows, layer.fc1, step_ffn_.data(), relu ? Epilogue::ReluBias : Epilogue::Bias);
    if (!relu) apply_activation<T>(step_ffn_.data(), int64_t(rows) * d.ffn_dim, d.activation, stream_);
    linear(step_ffn_.data(), rows, layer.fc2, step_projected_.data());
    residual_layer_norm<T>(hidden_.data(), step_projected_.data(), hidden_.data(),
                           layer.final_norm.gamma.data(), layer.final_norm.beta.data(), rows,
                           width, d.layer_norm_eps, false, stream_);
  }
  MatmulShape logits_shape;
  logits_shape.m = rows;
  logits_shape.n = d.vocab_size;
  logits_shape.k = width;
  if (!small_linear<T, float>(hidden_.data(), weights_.output_projection.data(), nullptr, logits_.data(),
                              rows, d.vocab_size, width, false, stream_)) {
    gemm_.matmul<T, float>(logits_shape, hidden_.data(), weights_.output_projection.data(), logits_.data());
  }
}

template <typename T>
void CudaModel<T>::prepare_rows(const std::vector<int>& slots, const std::vector<int>& tokens, int position) {
  const int rows = static_cast<int>(slots.size());
  reserve_rows(rows);
  std::vector<int> images(rows);
  for (int i = 0; i < rows; ++i) images[i] = slot_sources_.at(slots[i]);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), tokens.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(row_slots_.data(), slots.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(row_images_.data(), images.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(position_.data(), &position, sizeof(int), cudaMemcpyHostToDevice, stream_));
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
  size_t max_banned = 1;
  for (const auto& list : banned) max_banned = std::max(max_banned, list.size());
  std::vector<int> banned_table(rows * max_banned, -1);
  for (int r = 0; r < rows; ++r) std::copy(banned[r].begin(), banned[r].end(), banned_table.begin() + r * max_banned);
  ensure(beam_banned_, banned_table.size());
  ensure(beam_running_, rows);
  ensure(beam_values_, size_t(rows) * k);
  ensure(beam_tokens_, size_t(rows) * k);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(beam_banned_.data(), banned_table.data(), banned_table.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(beam_running_.data(), running_scores.data(), rows * sizeof(float), cudaMemcpyHostToDevice, stream_));
  forward(rows);
  BeamTopKParams params{rows, vocab_size(), k, beam_banned_.data(), static_cast<int>(max_banned),
                        beam_running_.data(), beam_values_.data(), beam_tokens_.data()};
  beam_top_k(params, logits_.data(), stream_);
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
  GreedyParams params{images, vocab_size(), max_length, min_length, eos, pad, no_repeat_ngram_size,
                      position_.data(), greedy_history_.data(), greedy_finished_.data(),
                      greedy_sum_log_.data(), greedy_sum_probability_.data(),
                      greedy_min_probability_.data()};
  // One decode step as a CUDA graph: its ~10 launches per layer replay with one call.
  std::vector<const void*> addresses = {
      greedy_history_.data(), greedy_finished_.data(), greedy_sum_log_.data(),
      greedy_sum_probability_.data(), greedy_min_probability_.data(), position_.data(),
      tokens_.data(), row_slots_.data(), row_images_.data(), hidden_.data(), step_qkv_.data(),
      step_context_.data(), step_projected_.data(), step_query_.data(), step_ffn_.data(),
      logits_.data(), attention_scratch_.data(), cross_kv_.data()};
  for (int l = 0; l < config_.decoder.num_layers; ++l) {
    addresses.push_back(key_cache_[l].data());
    addresses.push_back(value_cache_[l].data());
  }
  const std::vector<int> settings = {images, max_length, min_length, no_repeat_ngram_size, eos, pad,
                                     cache_length_};
  if (captured_.executable == nullptr || captured_.addresses != addresses || captured_.settings != settings) {
    if (captured_.executable != nullptr) cudaGraphExecDestroy(captured_.executable);
    cudaGraph_t graph;
    TROCR_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    gather_last_tokens(greedy_history_.data(), images, max_length, position_.data(), tokens_.data(), stream_);
    forward(images);
    greedy_select(params, logits_.data(), stream_);
    advance_position(position_.data(), stream_);
    TROCR_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    TROCR_CUDA_CHECK(cudaGraphInstantiate(&captured_.executable, graph, 0));
    cudaGraphDestroy(graph);
    captured_.addresses = addresses;
    captured_.settings = settings;
  }
  std::vector<int> done(images);
  constexpr int kCheckEvery = 4;
  for (int step = 0; step + 1 < max_length; ++step) {
    TROCR_CUDA_CHECK(cudaGraphLaunch(captured_.executable, stream_));
    if ((step + 1) % kCheckEvery == 0) {
      TROCR_CUDA_CHECK(cudaMemcpyAsync(done.data(), greedy_finished_.data(), images * sizeof(int), cudaMemcpyDeviceToHost, stream_));
      TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (std::all_of(done.begin(), done.end(), [](int f) { return f != 0; })) break;
    }
  }
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

// CudaModel's decoder step (forward) and what drives it: rows, KV caches, beam-search steps,
// and the CUDA graphs the steps replay as. The encoder, the greedy loop and the folded
// cross-attention are in cuda_encoder.cu, cuda_greedy.cu and folded_cross_attention.cu.
#include <cmath>
#include <map>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {

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
void CudaModel<T>::set_encoder_output(const T* encoder_hidden, int images, bool greedy_only) {
  const int sequence = config_.encoder.sequence_length();
  const int rows = images * sequence;
  const T* source = encoder_hidden;
  if (weights_.encoder_to_decoder) {
    projected_encoder_.grow(size_t(rows) * config_.decoder.d_model);
    linear(encoder_hidden, rows, *weights_.encoder_to_decoder, projected_encoder_.data());
    source = projected_encoder_.data();
  }
  encoder_states_ = source;
  images_ = images;
  cross_kv_ready_ = !(greedy_only && options_.folded_cross_attention);
  if (!cross_kv_ready_) return;
  cross_kv_.grow(size_t(rows) * weights_.cross_key_values.out);
  linear(source, rows, weights_.cross_key_values, cross_kv_.data());
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
  if (cache_length_ == 0) cache_length_ = max_length();
  const size_t cache = size_t(slots_) * cache_length_ * config_.decoder.d_model;
  key_cache_.resize(config_.decoder.num_layers);
  value_cache_.resize(config_.decoder.num_layers);
  std::vector<void*> pointers;
  for (int l = 0; l < config_.decoder.num_layers; ++l) {
    key_cache_[l].grow(cache);
    value_cache_[l].grow(cache);
    pointers.push_back(key_cache_[l].data());
    pointers.push_back(value_cache_[l].data());
  }
  cache_pointers_.upload(pointers, stream_);
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
  tokens_.assign(tokens, stream_);
  position_.assign({position}, stream_);
  upload_rows(slots, images);
}

template <typename T>
void CudaModel<T>::upload_rows(const std::vector<int>& slots, const std::vector<int>& images) {
  const std::vector<int> starts = cross_attention_groups(images);
  groups_ = static_cast<int>(starts.size()) - 1;
  // assign, not upload(): these buffers keep the capacity reserve_rows gave them, and no
  // synchronization is needed (see DeviceBuffer::assign).
  row_slots_.assign(slots, stream_);
  row_images_.assign(images, stream_);
  group_starts_.assign(starts, stream_);
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
  beam_banned_.assign(banned_table, stream_);
  beam_running_.assign(running_scores, stream_);
  beam_values_.grow(size_t(rows) * k);
  beam_tokens_.grow(size_t(rows) * k);
  BeamTopKParams params{rows, vocab_size(), k, beam_running_.data(), beam_values_.data(), beam_tokens_.data()};
  params.banned = beam_banned_.data();
  params.max_banned = static_cast<int>(max_banned);
  const auto addresses =
      step_addresses({beam_banned_.data(), beam_running_.data(), beam_values_.data(), beam_tokens_.data()});
  const std::vector<int> settings = {1, rows, k, static_cast<int>(max_banned), cache_length_, groups_};
  replay({addresses, settings}, [&] {
    forward(rows);
    beam_top_k(params, logits_.data(), stream_);
  });
  values->resize(size_t(rows) * k);
  token_ids->resize(size_t(rows) * k);
  beam_values_.copy_to(*values, stream_);
  beam_tokens_.copy_to(*token_ids, stream_);
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
  // Slots come in equal runs per image (beam search's layout), and caches move within a run.
  int beams = 1;
  while (beams < slots_ && slot_sources_[beams] == slot_sources_[0]) ++beams;
  std::vector<int> parents(slots_);
  for (int slot = 0; slot < slots_; ++slot) {
    parents[slot] = slot % beams;
    if (slots_ % beams != 0 || slot_sources_[slot] != slot_sources_[slot - parents[slot]]) {
      fail("CUDA decoder: beam reordering needs {} slots per image, image-major", beams);
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] / beams != sources[i] / beams) fail("CUDA decoder: reorder moves a cache between images");
    parents[slots[i]] = sources[i] % beams;
  }
  cache_parents_.assign(parents, stream_);
  permute_caches(beams, nullptr, slots_ / beams, nullptr, position);
}

template <typename T>
void CudaModel<T>::permute_caches(int beams, const int* images, int count, const int* stop, int positions) {
  PermuteCachesParams params{beams, cache_parents_.data(), images};
  if (positions > 0) {
    params.positions = positions;
  } else {
    params.position = position_.data();
  }
  params.slot_bytes = int64_t(cache_length_) * config_.decoder.d_model * sizeof(T);
  params.position_bytes = int64_t(config_.decoder.d_model) * sizeof(T);
  params.stop = stop;
  permute_beam_caches(params, cache_pointers_.data(), 2 * config_.decoder.num_layers, count,
                      positions > 0 ? positions : cache_length_, stream_);
}

template class CudaModel<float>;
template class CudaModel<__half>;
template class CudaModel<__nv_bfloat16>;

}  // namespace trocr::cuda

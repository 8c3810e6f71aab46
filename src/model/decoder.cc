#include "model/decoder.h"

#include <cmath>
#include <cstring>

#include "common/check.h"
#include "common/slot_runs.h"
#include "cpu/attention.h"
#include "cpu/layer_norm.h"
#include "cpu/linear.h"
#include "model/trocr_rules.h"

namespace trocr {

CpuDecoder::CpuDecoder(const ModelWeights& weights, const ModelConfig& config)
    : weights_(weights), config_(config) {}

int CpuDecoder::max_length() const {
  const DecoderConfig& decoder = config_.decoder;
  return decoder.max_position_embeddings;
}

void CpuDecoder::set_encoder_output(const float* encoder_hidden, int images, int sequence) {
  reserve_images(images, sequence);
  std::vector<int> slots(images);
  for (int i = 0; i < images; ++i) slots[i] = i;
  load_images(encoder_hidden, slots);
}

void CpuDecoder::reserve_images(int images, int sequence) {
  images_ = images;
  encoder_sequence_ = sequence;
  const size_t per_layer = static_cast<size_t>(images) * sequence * config_.decoder.d_model;
  cross_keys_.floats(per_layer * weights_.decoder.layers.size());
  cross_values_.floats(per_layer * weights_.decoder.layers.size());
}

void CpuDecoder::load_images(const float* encoder_hidden, const std::vector<int>& image_slots) {
  const int width = config_.decoder.d_model;
  const int64_t image_rows = encoder_sequence_;
  const int64_t rows = int64_t(image_slots.size()) * image_rows;
  for (int slot : image_slots) {
    if (slot < 0 || slot >= images_) fail("decoder: image slot {} of {}", slot, images_);
  }
  if (weights_.encoder_to_decoder) {
    float* projected = projected_.floats(rows * width);
    cpu::linear(encoder_hidden, rows, *weights_.encoder_to_decoder, projected);
    encoder_hidden = projected;
  }
  const int64_t hidden_width = weights_.encoder_to_decoder ? width : config_.encoder.hidden_size;
  const size_t per_layer = static_cast<size_t>(images_) * image_rows * width;
  for (const SlotRun& run : consecutive_slot_runs(image_slots)) {
    const float* input = encoder_hidden + int64_t(run.first) * image_rows * hidden_width;
    const int64_t run_rows = int64_t(run.count) * image_rows;
    const size_t offset = size_t(run.slot) * image_rows * width;
    for (size_t l = 0; l < weights_.decoder.layers.size(); ++l) {
      const DecoderLayerWeights& layer = weights_.decoder.layers[l];
      cpu::linear(input, run_rows, layer.cross_key, cross_keys_.data() + l * per_layer + offset);
      cpu::linear(input, run_rows, layer.cross_value, cross_values_.data() + l * per_layer + offset);
    }
  }
}

void CpuDecoder::begin(const std::vector<int>& slot_sources) {
  for (int source : slot_sources) {
    if (source < 0 || source >= images_) fail("decoder: slot reads image {} of {}", source, images_);
  }
  slot_sources_ = slot_sources;
  const size_t size = weights_.decoder.layers.size() * slot_sources.size() *
                      static_cast<size_t>(max_length()) * config_.decoder.d_model;
  // Left uninitialized: a slot's rows are written before attention reads them, and most of the
  // max_length rows are never touched (zeroing them cost more than the decoder's arithmetic).
  self_keys_.floats(size);
  self_values_.floats(size);
}

float* CpuDecoder::cache_row(const Scratch& cache, int layer, int slot, int position) const {
  const size_t width = config_.decoder.d_model;
  const size_t slots = slot_sources_.size();
  return cache.data() +
         ((static_cast<size_t>(layer) * slots + slot) * max_length() + position) * width;
}

void CpuDecoder::embed(const std::vector<int>& tokens, const std::vector<int>& positions, float* hidden) const {
  const DecoderConfig& config = config_.decoder;
  const int width = config.d_model;
  const float scale = config.scale_embedding ? std::sqrt(static_cast<float>(width)) : 1.0f;
  const int pad = config_.tokens.pad;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= config.vocab_size) {
      fail("decoder: token {} is outside the vocabulary of {}", tokens[i], config.vocab_size);
    }
    const int row = position_row(config.use_learned_position_embeddings, positions[i], tokens[i], pad);
    const float* token = weights_.decoder.embed_tokens.data() + int64_t{tokens[i]} * width;
    const float* place = weights_.decoder.embed_positions.data() + int64_t{row} * width;
    float* out = hidden + i * width;
    for (int d = 0; d < width; ++d) out[d] = token[d] * scale + place[d];
  }
  if (config.layernorm_embedding) {
    cpu::layer_norm(hidden, tokens.size(), width, weights_.decoder.layernorm_embedding,
                    config.layer_norm_eps, hidden);
  }
}

void CpuDecoder::step(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
                      float* logits) {
  step_rows(slots, tokens, std::vector<int>(slots.size(), position), logits);
}

void CpuDecoder::step_rows(const std::vector<int>& slots, const std::vector<int>& tokens,
                           const std::vector<int>& positions, float* logits) {
  const DecoderConfig& config = config_.decoder;
  const int width = config.d_model;
  const int64_t rows = static_cast<int64_t>(slots.size());
  for (int position : positions) {
    if (position < 0 || position >= max_length()) {
      fail("decoder: position {} is outside the model's {} positions", position, max_length());
    }
  }
  for (auto* buffer : {&hidden_, &q_, &k_, &v_, &context_}) buffer->resize(rows * width);
  ffn_.resize(rows * config.ffn_dim);
  embed(tokens, positions, hidden_.data());

  // Both attentions' head layout; each row says how many keys it reads.
  cpu::AttentionShape heads;
  heads.queries = 1;
  heads.heads = config.num_heads;
  heads.head_dim = width / config.num_heads;
  heads.q_stride = heads.kv_stride = width;
  heads.scale = 1.0f / std::sqrt(static_cast<float>(heads.head_dim));
  const size_t cross_per_layer = static_cast<size_t>(images_) * encoder_sequence_ * width;
  const auto residual = cpu::LinearPostOp::add_to_output();
  std::vector<cpu::QueryRow> attention_rows(rows);

  for (size_t l = 0; l < weights_.decoder.layers.size(); ++l) {
    const DecoderLayerWeights& layer = weights_.decoder.layers[l];
    const int layer_index = static_cast<int>(l);
    // Post-LN blocks: each sublayer's output is added into its input (the residual), then normalized.
    cpu::linear(hidden_.data(), rows, layer.self_query, q_.data());
    cpu::linear(hidden_.data(), rows, layer.self_key, k_.data());
    cpu::linear(hidden_.data(), rows, layer.self_value, v_.data());
    for (int64_t i = 0; i < rows; ++i) {
      std::memcpy(cache_row(self_keys_, layer_index, slots[i], positions[i]), k_.data() + i * width,
                  sizeof(float) * width);
      std::memcpy(cache_row(self_values_, layer_index, slots[i], positions[i]), v_.data() + i * width,
                  sizeof(float) * width);
      attention_rows[i] = {q_.data() + i * width, cache_row(self_keys_, layer_index, slots[i], 0),
                           cache_row(self_values_, layer_index, slots[i], 0), context_.data() + i * width,
                           positions[i] + 1};
    }
    cpu::attention_per_row(attention_rows.data(), rows, heads);
    cpu::linear(context_.data(), rows, layer.self_output, hidden_.data(), residual);
    cpu::layer_norm(hidden_.data(), rows, width, layer.self_attention_layernorm, config.layer_norm_eps,
                    hidden_.data());

    cpu::linear(hidden_.data(), rows, layer.cross_query, q_.data());
    for (int64_t i = 0; i < rows; ++i) {
      const size_t offset = l * cross_per_layer +
                            static_cast<size_t>(slot_sources_[slots[i]]) * encoder_sequence_ * width;
      attention_rows[i] = {q_.data() + i * width, cross_keys_.data() + offset, cross_values_.data() + offset,
                           context_.data() + i * width, encoder_sequence_};
    }
    cpu::attention_per_row(attention_rows.data(), rows, heads);
    cpu::linear(context_.data(), rows, layer.cross_output, hidden_.data(), residual);
    cpu::layer_norm(hidden_.data(), rows, width, layer.cross_attention_layernorm, config.layer_norm_eps,
                    hidden_.data());

    cpu::linear(hidden_.data(), rows, layer.fc1, ffn_.data(), cpu::LinearPostOp::activate(config.activation));
    cpu::linear(ffn_.data(), rows, layer.fc2, hidden_.data(), residual);
    cpu::layer_norm(hidden_.data(), rows, width, layer.final_layernorm, config.layer_norm_eps, hidden_.data());
  }
  cpu::matmul_transposed(hidden_.data(), rows, weights_.decoder.output_projection, nullptr, logits);
}

void CpuDecoder::reorder(const std::vector<int>& slots, const std::vector<int>& sources,
                         int position) {
  for (size_t i = 0; i < slots.size(); ++i) {
    // A beam stays with its image; reordering only moves beams of one image.
    if (slot_sources_[slots[i]] != slot_sources_[sources[i]]) {
      fail("decoder: reorder moves a beam between images");
    }
  }
  const size_t width = config_.decoder.d_model;
  const size_t span = static_cast<size_t>(position) * width;
  for (auto* cache : {&self_keys_, &self_values_}) {
    for (size_t l = 0; l < weights_.decoder.layers.size(); ++l) {
      const int layer = static_cast<int>(l);
      std::vector<float> saved(sources.size() * span);
      for (size_t i = 0; i < sources.size(); ++i) {
        std::memcpy(saved.data() + i * span, cache_row(*cache, layer, sources[i], 0), span * 4);
      }
      for (size_t i = 0; i < slots.size(); ++i) {
        std::memcpy(cache_row(*cache, layer, slots[i], 0), saved.data() + i * span, span * 4);
      }
    }
  }
}

}  // namespace trocr

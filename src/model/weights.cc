#include "model/weights.h"

#include <cmath>
#include <map>
#include <set>

#include "common/check.h"

namespace trocr {
namespace {

// transformers 5 names ViT's modules differently in memory; a state dict saved from memory
// (torch.save(model.state_dict())) carries those names. Maps an on-disk name to that form.
std::string transformers5_name(const std::string& name) {
  static const std::pair<const char*, const char*> kRenames[] = {
      {".attention.attention.query.", ".attention.q_proj."},
      {".attention.attention.key.", ".attention.k_proj."},
      {".attention.attention.value.", ".attention.v_proj."},
      {".attention.output.dense.", ".attention.o_proj."},
      {".intermediate.dense.", ".mlp.fc1."},
      {".output.dense.", ".mlp.fc2."}};
  const std::string prefix = "encoder.encoder.layer.";
  if (name.rfind(prefix, 0) != 0) return "";
  std::string renamed = "encoder.layers." + name.substr(prefix.size());
  for (const auto& [from, to] : kRenames) {
    const size_t at = renamed.find(from);
    if (at != std::string::npos) return renamed.replace(at, std::strlen(from), to);
  }
  return renamed;
}

class WeightReader {
 public:
  explicit WeightReader(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  HostTensor take(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorRecord* record = find(name);
    if (record == nullptr) {
      fail("{}: tensor '{}' {} is missing", checkpoint_.path, name, shape_string(shape));
    }
    return convert(name, *record, shape);
  }

  bool has(const std::string& name) const { return find(name) != nullptr; }

  LinearWeights linear(const std::string& prefix, int64_t out, int64_t in, bool bias = true) {
    LinearWeights linear;
    linear.weight = take(prefix + ".weight", {out, in});
    if (bias) linear.bias = take(prefix + ".bias", {out});
    return linear;
  }

  LayerNormWeights layer_norm(const std::string& prefix, int64_t width) {
    return {take(prefix + ".weight", {width}), take(prefix + ".bias", {width})};
  }

  // Tensors a checkpoint may carry that inference does not use (counted as parameters, as
  // HF's num_parameters() counts them).
  void ignore(const std::string& name) {
    const TensorRecord* record = find(name);
    if (record != nullptr && used_.insert(record).second) parameter_count_ += record->element_count();
  }

  void check_all_used() const {
    std::vector<std::string> unexpected;
    for (const auto& [name, record] : checkpoint_.tensors) {
      if (used_.count(&record) == 0) unexpected.push_back(name);
    }
    if (unexpected.empty()) return;
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 5; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
    if (unexpected.size() > 5) list += fmt::format(" and {} more", unexpected.size() - 5);
    fail("{}: {} unexpected tensor(s) that the config does not explain: {}", checkpoint_.path,
         unexpected.size(), list);
  }

  int64_t parameter_count() const { return parameter_count_; }
  DType most_common_dtype() const {
    DType best = DType::F32;
    int64_t best_count = -1;
    for (const auto& [dtype, count] : dtype_counts_) {
      if (count > best_count) best = dtype, best_count = count;
    }
    return best;
  }

 private:
  const TensorRecord* find(const std::string& name) const {
    if (const TensorRecord* record = checkpoint_.find(name)) return record;
    const std::string alternative = transformers5_name(name);
    return alternative.empty() ? nullptr : checkpoint_.find(alternative);
  }

  HostTensor convert(const std::string& name, const TensorRecord& record,
                     const std::vector<int64_t>& shape) {
    int64_t expected_count = 1;
    for (int64_t dimension : shape) expected_count *= dimension;
    // [1, 1, hidden] and [hidden] hold the same values; only the element layout must match.
    if (record.element_count() != expected_count || !same_shape_up_to_ones(record.shape, shape)) {
      fail("{}: tensor '{}' has shape {}, expected {} from config.json", checkpoint_.path, name,
           shape_string(record.shape), shape_string(shape));
    }
    if (!is_floating(record.dtype)) {
      fail("{}: tensor '{}' is {}, expected a floating-point type (F32, F16, BF16)",
           checkpoint_.path, name, dtype_name(record.dtype));
    }
    HostTensor tensor;
    tensor.shape = shape;
    tensor.values.resize(static_cast<size_t>(expected_count));
    convert_to_float32(record.dtype, record.data, tensor.values.size(), tensor.values.data());
    if (checkpoint_.file) checkpoint_.file->release(record.data, record.nbytes);
    if (used_.insert(&record).second) {
      parameter_count_ += expected_count;
      dtype_counts_[record.dtype] += expected_count;
    }
    return tensor;
  }

  static bool same_shape_up_to_ones(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    std::vector<int64_t> a_squeezed, b_squeezed;
    for (int64_t d : a) if (d != 1) a_squeezed.push_back(d);
    for (int64_t d : b) if (d != 1) b_squeezed.push_back(d);
    return a_squeezed == b_squeezed;
  }

  const Checkpoint& checkpoint_;
  std::set<const TensorRecord*> used_;
  int64_t parameter_count_ = 0;
  std::map<DType, int64_t> dtype_counts_;
};

EncoderWeights load_encoder(WeightReader& reader, const EncoderConfig& config) {
  const int64_t hidden = config.hidden_size;
  const int64_t patch_inputs = int64_t{config.num_channels} * config.patch_size * config.patch_size;
  EncoderWeights encoder;
  const std::string embeddings = "encoder.embeddings.";
  encoder.patch_projection.weight =
      reader.take(embeddings + "patch_embeddings.projection.weight",
                  {hidden, config.num_channels, config.patch_size, config.patch_size});
  encoder.patch_projection.weight.shape = {hidden, patch_inputs};
  encoder.patch_projection.bias = reader.take(embeddings + "patch_embeddings.projection.bias", {hidden});
  encoder.cls_token = reader.take(embeddings + "cls_token", {hidden});
  if (config.type == EncoderType::Deit) {
    encoder.distillation_token = reader.take(embeddings + "distillation_token", {hidden});
  }
  encoder.position_embeddings =
      reader.take(embeddings + "position_embeddings", {config.sequence_length(), hidden});
  reader.ignore(embeddings + "mask_token");
  for (int i = 0; i < config.num_layers; ++i) {
    const std::string layer = fmt::format("encoder.encoder.layer.{}.", i);
    EncoderLayerWeights weights;
    weights.layernorm_before = reader.layer_norm(layer + "layernorm_before", hidden);
    weights.query = reader.linear(layer + "attention.attention.query", hidden, hidden, config.qkv_bias);
    weights.key = reader.linear(layer + "attention.attention.key", hidden, hidden, config.qkv_bias);
    weights.value = reader.linear(layer + "attention.attention.value", hidden, hidden, config.qkv_bias);
    weights.attention_output = reader.linear(layer + "attention.output.dense", hidden, hidden);
    weights.layernorm_after = reader.layer_norm(layer + "layernorm_after", hidden);
    weights.intermediate = reader.linear(layer + "intermediate.dense", config.intermediate_size, hidden);
    weights.output = reader.linear(layer + "output.dense", hidden, config.intermediate_size);
    encoder.layers.push_back(std::move(weights));
  }
  encoder.final_layernorm = reader.layer_norm("encoder.layernorm", hidden);
  // VisionEncoderDecoderModel builds its encoder with a pooler that TrOCR never runs.
  reader.ignore("encoder.pooler.dense.weight");
  reader.ignore("encoder.pooler.dense.bias");
  return encoder;
}

DecoderWeights load_decoder(WeightReader& reader, const ModelConfig& model) {
  const DecoderConfig& config = model.decoder;
  const int64_t width = config.d_model;
  const int64_t cross_width = model.cross_attention_width();
  const std::string base = "decoder.model.decoder.";
  DecoderWeights decoder;
  decoder.embed_tokens = reader.take(base + "embed_tokens.weight", {config.vocab_size, width});
  if (config.use_learned_position_embeddings) {
    // TrOCRLearnedPositionalEmbedding keeps 2 extra rows: positions start at offset 2.
    decoder.embed_positions =
        reader.take(base + "embed_positions.weight", {config.max_position_embeddings + 2, width});
  } else {
    decoder.embed_positions = sinusoidal_positions(
        config.max_position_embeddings + model.tokens.pad + 1, config.d_model, model.tokens.pad);
    reader.ignore(base + "embed_positions._float_tensor");
  }
  if (config.layernorm_embedding) {
    decoder.layernorm_embedding = reader.layer_norm(base + "layernorm_embedding", width);
  }
  for (int i = 0; i < config.num_layers; ++i) {
    const std::string layer = fmt::format("{}layers.{}.", base, i);
    DecoderLayerWeights weights;
    weights.self_query = reader.linear(layer + "self_attn.q_proj", width, width);
    weights.self_key = reader.linear(layer + "self_attn.k_proj", width, width);
    weights.self_value = reader.linear(layer + "self_attn.v_proj", width, width);
    weights.self_output = reader.linear(layer + "self_attn.out_proj", width, width);
    weights.self_attention_layernorm = reader.layer_norm(layer + "self_attn_layer_norm", width);
    weights.cross_query = reader.linear(layer + "encoder_attn.q_proj", width, width);
    weights.cross_key = reader.linear(layer + "encoder_attn.k_proj", width, cross_width);
    weights.cross_value = reader.linear(layer + "encoder_attn.v_proj", width, cross_width);
    weights.cross_output = reader.linear(layer + "encoder_attn.out_proj", width, width);
    weights.cross_attention_layernorm = reader.layer_norm(layer + "encoder_attn_layer_norm", width);
    weights.fc1 = reader.linear(layer + "fc1", config.ffn_dim, width);
    weights.fc2 = reader.linear(layer + "fc2", width, config.ffn_dim);
    weights.final_layernorm = reader.layer_norm(layer + "final_layer_norm", width);
    decoder.layers.push_back(std::move(weights));
  }
  const std::string output_name = "decoder.output_projection.weight";
  if (config.tie_word_embeddings) {
    // Tied: HF points the output projection at embed_tokens, whatever the file holds.
    reader.ignore(output_name);
    decoder.output_projection = decoder.embed_tokens;
  } else {
    decoder.output_projection = reader.take(output_name, {config.vocab_size, width});
  }
  return decoder;
}

}  // namespace

HostTensor sinusoidal_positions(int count, int dim, int padding_idx) {
  // Computed in float32 like the PyTorch original: exp(i * -log(10000) / (half - 1)), then
  // sin and cos of position * frequency; odd widths get a zero column; the padding row is 0.
  HostTensor table;
  table.shape = {count, dim};
  table.values.assign(static_cast<size_t>(count) * dim, 0.0f);
  const int half = dim / 2;
  const float step = half > 1 ? static_cast<float>(-std::log(10000.0) / (half - 1)) : 0.0f;
  std::vector<float> frequency(half);
  for (int i = 0; i < half; ++i) frequency[i] = std::exp(static_cast<float>(i) * step);
  for (int position = 0; position < count; ++position) {
    if (position == padding_idx) continue;
    float* row = table.values.data() + static_cast<size_t>(position) * dim;
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(position) * frequency[i];
      row[i] = std::sin(angle);
      row[half + i] = std::cos(angle);
    }
  }
  return table;
}

ModelWeights load_weights(const Checkpoint& checkpoint, const ModelConfig& config) {
  WeightReader reader(checkpoint);
  ModelWeights weights;
  weights.encoder = load_encoder(reader, config.encoder);
  if (config.has_encoder_to_decoder_projection()) {
    weights.encoder_to_decoder =
        reader.linear("enc_to_dec_proj", config.decoder.d_model, config.encoder.hidden_size);
  }
  weights.decoder = load_decoder(reader, config);
  reader.check_all_used();
  weights.parameter_count = reader.parameter_count();
  weights.source_dtype = reader.most_common_dtype();
  return weights;
}

}  // namespace trocr

// config.json of a VisionEncoderDecoderModel with a ViT or DeiT encoder and a TrOCR decoder.
#include "common/check.h"
#include "formats/json_file.h"
#include "trocr/config.h"

namespace trocr {
namespace {

Activation parse_activation(const JsonFields& fields, const std::string& key,
                            const std::string& fallback) {
  const std::string name = fields.get_string(key, fallback);
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return Activation::GeluTanh;
  }
  if (name == "relu") return Activation::Relu;
  fail("{} is '{}'; supported activations are gelu, gelu_new, gelu_pytorch_tanh, gelu_fast and "
       "relu",
       fields.where(key), name);
}

// image_size and patch_size are an int or a [height, width] pair in ViT configs.
void parse_size_pair(const JsonFields& fields, const std::string& key, int fallback, int* height,
                     int* width) {
  if (!fields.has(key)) {
    *height = *width = fallback;
    return;
  }
  const auto& value = fields.at(key);
  if (value.is_number_integer()) {
    *height = *width = value.get<int>();
  } else if (value.is_array() && value.size() == 2 && value[0].is_number_integer() &&
             value[1].is_number_integer()) {
    *height = value[0].get<int>();
    *width = value[1].get<int>();
  } else {
    fail("{} must be an integer or [height, width], found {}", fields.where(key), value.dump());
  }
  if (*height <= 0 || *width <= 0 || *height > 8192 || *width > 8192) {
    fail("{} is out of range: {}", fields.where(key), value.dump());
  }
}

void require_divisible(const JsonFields& fields, const char* key, int value, int heads) {
  if (value % heads != 0) {
    fail("{} = {} is not divisible by the number of attention heads ({})", fields.where(key),
         value, heads);
  }
}

EncoderConfig parse_encoder(const JsonFields& fields) {
  EncoderConfig encoder;
  const std::string type = fields.get_string("model_type", "");
  if (type == "vit") {
    encoder.type = EncoderType::Vit;
  } else if (type == "deit") {
    encoder.type = EncoderType::Deit;
  } else {
    fail("{} is '{}'; trocr-rt supports the 'vit' and 'deit' encoders of TrOCR",
         fields.where("model_type"), type);
  }
  parse_size_pair(fields, "image_size", 224, &encoder.image_height, &encoder.image_width);
  int patch_height, patch_width;
  parse_size_pair(fields, "patch_size", 16, &patch_height, &patch_width);
  if (patch_height != patch_width) {
    fail("{}: non-square patches are not supported", fields.where("patch_size"));
  }
  encoder.patch_size = patch_height;
  if (encoder.image_height < encoder.patch_size || encoder.image_width < encoder.patch_size) {
    fail("{}: image smaller than one patch", fields.where("image_size"));
  }
  encoder.num_channels = fields.get_int("num_channels", 3);
  if (encoder.num_channels != 3) {
    fail("{} is {}; only RGB (3-channel) encoders are supported", fields.where("num_channels"),
         encoder.num_channels);
  }
  encoder.hidden_size = fields.require_positive_int("hidden_size");
  encoder.num_layers = fields.require_positive_int("num_hidden_layers");
  encoder.num_heads = fields.require_positive_int("num_attention_heads");
  encoder.intermediate_size = fields.require_positive_int("intermediate_size");
  require_divisible(fields, "hidden_size", encoder.hidden_size, encoder.num_heads);
  encoder.activation = parse_activation(fields, "hidden_act", "gelu");
  encoder.layer_norm_eps = static_cast<float>(fields.get_number("layer_norm_eps", 1e-12));
  encoder.qkv_bias = fields.get_bool("qkv_bias", true);
  return encoder;
}

DecoderConfig parse_decoder(const JsonFields& fields) {
  const std::string type = fields.get_string("model_type", "");
  if (type != "trocr") {
    fail("{} is '{}'; trocr-rt supports the 'trocr' decoder", fields.where("model_type"), type);
  }
  DecoderConfig decoder;
  decoder.vocab_size = fields.require_positive_int("vocab_size");
  decoder.d_model = fields.require_positive_int("d_model");
  decoder.num_layers = fields.require_positive_int("decoder_layers");
  decoder.num_heads = fields.require_positive_int("decoder_attention_heads");
  decoder.ffn_dim = fields.require_positive_int("decoder_ffn_dim");
  require_divisible(fields, "d_model", decoder.d_model, decoder.num_heads);
  decoder.activation = parse_activation(fields, "activation_function", "gelu");
  decoder.max_position_embeddings = fields.require_positive_int("max_position_embeddings");
  decoder.scale_embedding = fields.get_bool("scale_embedding", false);
  decoder.use_learned_position_embeddings =
      fields.get_bool("use_learned_position_embeddings", true);
  decoder.layernorm_embedding = fields.get_bool("layernorm_embedding", true);
  decoder.cross_attention_hidden_size = fields.get_int("cross_attention_hidden_size", 0);
  if (decoder.cross_attention_hidden_size < 0) {
    fail("{} must be positive", fields.where("cross_attention_hidden_size"));
  }
  // PretrainedConfig's default is to tie.
  decoder.tie_word_embeddings = fields.get_bool("tie_word_embeddings", true);
  return decoder;
}

}  // namespace

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::Gelu: return "gelu";
    case Activation::GeluTanh: return "gelu_tanh";
    case Activation::Relu: return "relu";
  }
  return "?";
}

bool ModelConfig::has_encoder_to_decoder_projection() const {
  return encoder.hidden_size != decoder.d_model && decoder.cross_attention_hidden_size == 0;
}

int ModelConfig::cross_attention_width() const {
  if (decoder.cross_attention_hidden_size > 0) return decoder.cross_attention_hidden_size;
  return decoder.d_model;
}

ModelConfig load_model_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  const nlohmann::json json = read_json_file(path);
  const JsonFields fields(json, path);
  const std::string type = fields.get_string("model_type", "");
  if (type != "vision-encoder-decoder") {
    fail("{} is '{}'; expected 'vision-encoder-decoder' (a TrOCR VisionEncoderDecoderModel)",
         fields.where("model_type"), type);
  }
  ModelConfig config;
  config.encoder = parse_encoder(fields.object("encoder"));
  const JsonFields decoder_fields = fields.object("decoder");
  config.decoder = parse_decoder(decoder_fields);
  if (config.decoder.cross_attention_hidden_size > 0 &&
      config.decoder.cross_attention_hidden_size != config.encoder.hidden_size) {
    fail("{} is {} but the encoder's hidden_size is {}",
         decoder_fields.where("cross_attention_hidden_size"),
         config.decoder.cross_attention_hidden_size, config.encoder.hidden_size);
  }
  // The outer config's token ids win; the decoder's fill the gaps (as HF resolves them).
  auto token = [&](const char* key, int fallback) {
    return fields.get_int(key, decoder_fields.get_int(key, fallback));
  };
  config.tokens.decoder_start = token("decoder_start_token_id", -1);
  config.tokens.bos = token("bos_token_id", 0);
  config.tokens.eos = token("eos_token_id", 2);
  config.tokens.pad = token("pad_token_id", 1);
  if (config.tokens.decoder_start < 0) {
    fail("{}: decoder_start_token_id is missing (HF cannot generate without it either)", path);
  }
  const int vocab = config.decoder.vocab_size;
  for (auto [name, id] : {std::pair{"decoder_start_token_id", config.tokens.decoder_start},
                          std::pair{"eos_token_id", config.tokens.eos},
                          std::pair{"pad_token_id", config.tokens.pad}}) {
    if (id < 0 || id >= vocab) fail("{}: {} = {} is outside the vocabulary of {}", path, name, id, vocab);
  }
  return config;
}

}  // namespace trocr

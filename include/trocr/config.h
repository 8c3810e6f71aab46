#pragma once
// What a TrOCR checkpoint directory describes: the architecture (config.json), how to
// generate (generation_config.json or the legacy fields of config.json) and how to turn an
// image into pixels (preprocessor_config.json or processor_config.json).
#include <optional>
#include <string>
#include <vector>

namespace trocr {

enum class Activation { Gelu, GeluTanh, Relu };
const char* activation_name(Activation activation);

enum class EncoderType { Vit, Deit };

struct EncoderConfig {
  EncoderType type = EncoderType::Vit;
  int image_height = 384;
  int image_width = 384;
  int patch_size = 16;
  int num_channels = 3;
  int hidden_size = 768;
  int num_layers = 12;
  int num_heads = 12;
  int intermediate_size = 3072;
  Activation activation = Activation::Gelu;
  float layer_norm_eps = 1e-12f;
  bool qkv_bias = true;

  int patches_per_row() const { return image_width / patch_size; }
  int patch_count() const { return (image_height / patch_size) * patches_per_row(); }
  // DeiT prepends a distillation token after the CLS token.
  int prefix_tokens() const { return type == EncoderType::Deit ? 2 : 1; }
  int sequence_length() const { return patch_count() + prefix_tokens(); }
};

struct DecoderConfig {
  int vocab_size = 50265;
  int d_model = 1024;
  int num_layers = 12;
  int num_heads = 16;
  int ffn_dim = 4096;
  Activation activation = Activation::Gelu;
  int max_position_embeddings = 512;
  bool scale_embedding = false;
  bool use_learned_position_embeddings = true;
  bool layernorm_embedding = true;
  // Width of the encoder states that cross-attention reads; 0 means d_model.
  int cross_attention_hidden_size = 0;
  bool tie_word_embeddings = true;
  float layer_norm_eps = 1e-5f;  // modeling_trocr.py uses nn.LayerNorm's default
};

struct TokenIds {
  int decoder_start = 2;
  int bos = 0;
  int eos = 2;
  int pad = 1;
};

struct ModelConfig {
  EncoderConfig encoder;
  DecoderConfig decoder;
  TokenIds tokens;
  // VisionEncoderDecoderModel adds enc_to_dec_proj when the widths differ and the decoder
  // does not declare cross_attention_hidden_size.
  bool has_encoder_to_decoder_projection() const;
  int cross_attention_width() const;
};

// Three-way early_stopping of HF's beam search.
enum class EarlyStopping { False, True, Never };
// "false", "true" or "never", as generation_config.json writes it.
const char* early_stopping_name(EarlyStopping value);

struct GenerationConfig {
  std::optional<int> max_length;      // total length, start token included
  std::optional<int> max_new_tokens;  // takes precedence over max_length
  int min_length = 0;
  std::optional<int> min_new_tokens;
  int num_beams = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::False;
  int no_repeat_ngram_size = 0;
  int num_return_sequences = 1;
  TokenIds tokens;
  std::string source;  // which file the settings came from

  // HF's rule: max_new_tokens wins; without either, 20 new tokens.
  int resolved_max_length(int prompt_length = 1) const;
  int resolved_min_length(int prompt_length = 1) const;
};

enum class ResampleFilter { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

struct PreprocessConfig {
  bool do_resize = true;
  int height = 384;
  int width = 384;
  ResampleFilter resample = ResampleFilter::Bilinear;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::vector<float> image_mean = {0.5f, 0.5f, 0.5f};
  std::vector<float> image_std = {0.5f, 0.5f, 0.5f};
  std::string source;
};

// Readers for a checkpoint directory's files; errors name the file and the field.
ModelConfig load_model_config(const std::string& model_dir);
GenerationConfig load_generation_config(const std::string& model_dir, const ModelConfig& model);
PreprocessConfig load_preprocess_config(const std::string& model_dir);

}  // namespace trocr

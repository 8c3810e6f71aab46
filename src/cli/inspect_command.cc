// trocr inspect MODEL_DIR: what the checkpoint is, or a precise error.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/model_directory.h"

namespace trocr::cli {
namespace {

// Floats as the config wrote them (0.485, not 0.48500001430511475).
std::vector<double> rounded(const std::vector<float>& values) {
  std::vector<double> result;
  for (float value : values) result.push_back(std::stod(fmt::format("{}", value)));
  return result;
}

nlohmann::json describe(const ModelDirectory& model) {
  const EncoderConfig& encoder = model.config.encoder;
  const DecoderConfig& decoder = model.config.decoder;
  const GenerationConfig& generation = model.generation;
  nlohmann::json json;
  json["model_dir"] = model.path;
  json["weights_file"] = model.weights_path;
  json["parameters"] = model.weights.parameter_count;
  json["dtype"] = dtype_name(model.weights.source_dtype);
  json["encoder"] = {
      {"type", encoder.type == EncoderType::Vit ? "vit" : "deit"},
      {"image_size", {encoder.image_height, encoder.image_width}},
      {"patch_size", encoder.patch_size},
      {"hidden_size", encoder.hidden_size},
      {"layers", encoder.num_layers},
      {"heads", encoder.num_heads},
      {"intermediate_size", encoder.intermediate_size},
      {"activation", activation_name(encoder.activation)},
      {"qkv_bias", encoder.qkv_bias},
      {"layer_norm_eps", encoder.layer_norm_eps},
      {"sequence_length", encoder.sequence_length()}};
  json["decoder"] = {
      {"vocab_size", decoder.vocab_size},
      {"d_model", decoder.d_model},
      {"layers", decoder.num_layers},
      {"heads", decoder.num_heads},
      {"ffn_dim", decoder.ffn_dim},
      {"activation", activation_name(decoder.activation)},
      {"max_position_embeddings", decoder.max_position_embeddings},
      {"positions", decoder.use_learned_position_embeddings ? "learned" : "sinusoidal"},
      {"scale_embedding", decoder.scale_embedding},
      {"layernorm_embedding", decoder.layernorm_embedding},
      {"tie_word_embeddings", decoder.tie_word_embeddings},
      {"encoder_to_decoder_projection", model.config.has_encoder_to_decoder_projection()}};
  json["tokenizer"] = {{"kind", model.detokenizer->kind()},
                       {"vocab_size", model.detokenizer->vocab_size()}};
  json["generation"] = {
      {"source", generation.source},
      {"max_length", generation.resolved_max_length()},
      {"min_length", generation.resolved_min_length()},
      {"num_beams", generation.num_beams},
      {"length_penalty", generation.length_penalty},
      {"early_stopping", early_stopping_name(generation.early_stopping)},
      {"no_repeat_ngram_size", generation.no_repeat_ngram_size},
      {"num_return_sequences", generation.num_return_sequences},
      {"decoder_start_token_id", generation.tokens.decoder_start},
      {"bos_token_id", generation.tokens.bos},
      {"eos_token_id", generation.tokens.eos},
      {"pad_token_id", generation.tokens.pad}};
  json["preprocess"] = {{"source", model.preprocess.source},
                        {"size", {model.preprocess.height, model.preprocess.width}},
                        {"resample", "bilinear"},
                        {"rescale_factor", model.preprocess.rescale_factor},
                        {"image_mean", rounded(model.preprocess.image_mean)},
                        {"image_std", rounded(model.preprocess.image_std)}};
  return json;
}

void print_text(const nlohmann::json& json) {
  const auto& encoder = json["encoder"];
  const auto& decoder = json["decoder"];
  const auto& generation = json["generation"];
  fmt::print("model       {}\n", json["model_dir"].get<std::string>());
  fmt::print("weights     {} ({}, {:.2f} M parameters)\n", json["weights_file"].get<std::string>(),
             json["dtype"].get<std::string>(), json["parameters"].get<int64_t>() / 1e6);
  fmt::print("encoder     {} {}x{} image, patch {}, {} tokens; {} layers x {} wide, {} heads, "
             "ffn {}, {}, qkv_bias {}\n",
             encoder["type"].get<std::string>(), encoder["image_size"][0].get<int>(),
             encoder["image_size"][1].get<int>(), encoder["patch_size"].get<int>(),
             encoder["sequence_length"].get<int>(), encoder["layers"].get<int>(),
             encoder["hidden_size"].get<int>(), encoder["heads"].get<int>(),
             encoder["intermediate_size"].get<int>(), encoder["activation"].get<std::string>(),
             encoder["qkv_bias"].get<bool>());
  fmt::print("decoder     trocr {} layers x {} wide, {} heads, ffn {}, {}, {} positions (max {}), "
             "scale_embedding {}, layernorm_embedding {}, tied output {}{}\n",
             decoder["layers"].get<int>(), decoder["d_model"].get<int>(),
             decoder["heads"].get<int>(), decoder["ffn_dim"].get<int>(),
             decoder["activation"].get<std::string>(), decoder["positions"].get<std::string>(),
             decoder["max_position_embeddings"].get<int>(), decoder["scale_embedding"].get<bool>(),
             decoder["layernorm_embedding"].get<bool>(),
             decoder["tie_word_embeddings"].get<bool>(),
             decoder["encoder_to_decoder_projection"].get<bool>() ? ", enc_to_dec_proj" : "");
  fmt::print("vocabulary  {} tokens in the model, {} in the {} tokenizer\n",
             decoder["vocab_size"].get<int>(), json["tokenizer"]["vocab_size"].get<size_t>(),
             json["tokenizer"]["kind"].get<std::string>());
  fmt::print("generation  beams {}, max_length {}, min_length {}, length_penalty {}, "
             "early_stopping {}, no_repeat_ngram_size {}, start {}, eos {}, pad {}\n",
             generation["num_beams"].get<int>(), generation["max_length"].get<int>(),
             generation["min_length"].get<int>(), generation["length_penalty"].get<double>(),
             generation["early_stopping"].get<std::string>(),
             generation["no_repeat_ngram_size"].get<int>(),
             generation["decoder_start_token_id"].get<int>(), generation["eos_token_id"].get<int>(),
             generation["pad_token_id"].get<int>());
  fmt::print("            (from {})\n", generation["source"].get<std::string>());
  fmt::print("preprocess  resize to {}x{} bilinear, mean {}, std {} (from {})\n",
             json["preprocess"]["size"][1].get<int>(), json["preprocess"]["size"][0].get<int>(),
             json["preprocess"]["image_mean"].dump(), json["preprocess"]["image_std"].dump(),
             json["preprocess"]["source"].get<std::string>());
}

}  // namespace

Action add_inspect_command(CLI::App& app) {
  auto* command = app.add_subcommand("inspect", "Describe a TrOCR checkpoint directory");
  auto model_dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  command->add_option("MODEL_DIR", *model_dir, "HF checkpoint directory")->required();
  command->add_flag("--json", *as_json, "Print one JSON object");
  return [model_dir, as_json]() {
    const ModelDirectory model = load_model_directory(*model_dir);
    const nlohmann::json json = describe(model);
    if (*as_json) {
      fmt::print("{}\n", json.dump());
    } else {
      print_text(json);
    }
    return 0;
  };
}

}  // namespace trocr::cli

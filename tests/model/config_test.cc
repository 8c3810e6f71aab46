// config.json / generation settings / image processor settings: the values HF resolved for
// the golden models (recorded in golden.json), and clear errors for what is not supported.
#include "support/test_support.h"
#include "trocr/config.h"
#include "trocr/error.h"

namespace trocr::test {
namespace {

TEST(ModelConfig, ReadsGoldenConfigs) {
  const ModelConfig vit = load_model_config(model_dir("vit-char"));
  EXPECT_EQ(vit.encoder.type, EncoderType::Vit);
  EXPECT_EQ(vit.encoder.image_height, 40);
  EXPECT_EQ(vit.encoder.patch_size, 8);
  EXPECT_EQ(vit.encoder.sequence_length(), 26);  // 5x5 patches + CLS
  EXPECT_TRUE(vit.encoder.qkv_bias);
  EXPECT_EQ(vit.decoder.vocab_size, 52);
  EXPECT_FALSE(vit.decoder.tie_word_embeddings);
  EXPECT_TRUE(vit.decoder.use_learned_position_embeddings);
  EXPECT_FALSE(vit.has_encoder_to_decoder_projection());
  EXPECT_EQ(vit.tokens.decoder_start, 0);

  const ModelConfig deit = load_model_config(model_dir("deit-bpe"));
  EXPECT_EQ(deit.encoder.type, EncoderType::Deit);
  EXPECT_EQ(deit.encoder.sequence_length(), 18);  // 4x4 patches + CLS + distillation
  EXPECT_FALSE(deit.encoder.qkv_bias);
  EXPECT_EQ(deit.decoder.activation, Activation::Relu);
  EXPECT_FALSE(deit.decoder.use_learned_position_embeddings);
  EXPECT_TRUE(deit.decoder.scale_embedding);
  EXPECT_FALSE(deit.decoder.layernorm_embedding);
  EXPECT_EQ(deit.tokens.decoder_start, 2);

  const ModelConfig projected = load_model_config(model_dir("vit-proj"));
  EXPECT_TRUE(projected.has_encoder_to_decoder_projection());
  EXPECT_EQ(projected.encoder.layer_norm_eps, 1e-6f);
}

// HF's own resolution of the generation settings, recorded when the goldens were made.
TEST(GenerationConfig, AgreesWithHfResolution) {
  for (const auto& variant : golden_variants()) {
    SCOPED_TRACE(variant);
    const auto hf = read_json(model_dir(variant) + "/golden.json")["generation_config"];
    const ModelConfig model = load_model_config(model_dir(variant));
    const GenerationConfig ours = load_generation_config(model_dir(variant), model);
    EXPECT_EQ(ours.num_beams, hf["num_beams"].is_null() ? 1 : hf["num_beams"].get<int>());
    EXPECT_EQ(ours.no_repeat_ngram_size,
              hf["no_repeat_ngram_size"].is_null() ? 0 : hf["no_repeat_ngram_size"].get<int>());
    EXPECT_EQ(ours.length_penalty,
              hf["length_penalty"].is_null() ? 1.0 : hf["length_penalty"].get<double>());
    EXPECT_EQ(ours.early_stopping == EarlyStopping::True,
              !hf["early_stopping"].is_null() && hf["early_stopping"] == true);
    // HF generates 20 new tokens after the start token when no length is set.
    EXPECT_EQ(ours.resolved_max_length(), hf["max_length"].is_null() ? 21 : hf["max_length"].get<int>());
    EXPECT_EQ(ours.tokens.decoder_start, hf["decoder_start_token_id"].get<int>());
    EXPECT_EQ(ours.tokens.eos, hf["eos_token_id"].get<int>());
    EXPECT_EQ(ours.tokens.pad, hf["pad_token_id"].get<int>());
    EXPECT_EQ(ours.tokens.bos, hf["bos_token_id"].get<int>());
  }
}

TEST(GenerationConfig, GenerationConfigJsonWinsOverLegacyFields) {
  ScratchDir scratch;
  copy_model_dir("vit-char", scratch.root());
  write_json(scratch.path("generation_config.json"),
             {{"num_beams", 2}, {"max_new_tokens", 7}, {"early_stopping", "never"},
              {"decoder_start_token_id", 0}, {"eos_token_id", {2}}});
  const ModelConfig model = load_model_config(scratch.root());
  const GenerationConfig config = load_generation_config(scratch.root(), model);
  EXPECT_EQ(config.num_beams, 2);
  EXPECT_EQ(config.no_repeat_ngram_size, 0);  // the legacy 3 in config.json is not used
  EXPECT_EQ(config.resolved_max_length(), 8);
  EXPECT_EQ(config.early_stopping, EarlyStopping::Never);
  EXPECT_EQ(config.tokens.eos, 2);
}

TEST(GenerationConfig, LegacyFieldsFallBackToTheDecoderConfig) {
  ScratchDir scratch;
  copy_model_dir("vit-char", scratch.root());
  auto config = read_json(scratch.path("config.json"));
  config.erase("num_beams");
  config["decoder"]["num_beams"] = 3;
  config["decoder"]["length_penalty"] = 0.5;
  write_json(scratch.path("config.json"), config);
  const GenerationConfig generation =
      load_generation_config(scratch.root(), load_model_config(scratch.root()));
  EXPECT_EQ(generation.num_beams, 3);
  EXPECT_EQ(generation.length_penalty, 2.0);  // the outer value wins
}

TEST(GenerationConfig, RejectsWhatItDoesNotImplement) {
  ScratchDir scratch;
  copy_model_dir("deit-bpe", scratch.root());
  const ModelConfig model = load_model_config(scratch.root());
  const std::vector<std::pair<nlohmann::json, const char*>> cases = {
      {{{"do_sample", true}}, "sampling"},
      {{{"repetition_penalty", 1.2}}, "repetition_penalty"},
      {{{"num_beam_groups", 2}}, "group"},
      {{{"forced_eos_token_id", 2}}, "forced_eos_token_id"},
      {{{"suppress_tokens", {5}}}, "suppress"},
      {{{"eos_token_id", {2, 3}}}, "exactly one"},
      {{{"num_beams", 0}}, "must be positive"},
      {{{"num_beams", 2}, {"num_return_sequences", 3}}, "num_return_sequences"},
      {{{"early_stopping", "sometimes"}}, "\"never\""},
      {{{"max_length", "long"}}, "must be an integer"},
  };
  for (const auto& [json, expected] : cases) {
    SCOPED_TRACE(json.dump());
    write_json(scratch.path("generation_config.json"), json);
    EXPECT_ERROR_CONTAINS(load_generation_config(scratch.root(), model), "generation_config.json",
                          expected);
  }
}

TEST(ModelConfig, RejectsUnsupportedAndBrokenConfigs) {
  ScratchDir scratch;
  copy_model_dir("vit-char", scratch.root());
  const auto original = read_json(scratch.path("config.json"));
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {[](auto& c) { c["model_type"] = "encoder-decoder"; }, "'vision-encoder-decoder'"},
      {[](auto& c) { c["encoder"]["model_type"] = "swin"; }, "'swin'"},
      {[](auto& c) { c["decoder"]["model_type"] = "bart"; }, "'trocr' decoder"},
      {[](auto& c) { c["decoder"]["activation_function"] = "swish"; }, "decoder.activation_function"},
      {[](auto& c) { c["encoder"]["hidden_act"] = "quick_gelu"; }, "encoder.hidden_act"},
      {[](auto& c) { c["encoder"].erase("hidden_size"); }, "encoder.hidden_size' is missing"},
      {[](auto& c) { c["decoder"]["d_model"] = "big"; }, "decoder.d_model' must be an integer"},
      {[](auto& c) { c["decoder"]["decoder_attention_heads"] = 5; }, "not divisible"},
      {[](auto& c) { c["encoder"]["num_channels"] = 1; }, "num_channels"},
      {[](auto& c) { c["encoder"]["patch_size"] = {8, 4}; }, "non-square"},
      {[](auto& c) { c["decoder"]["cross_attention_hidden_size"] = 48; }, "cross_attention_hidden_size"},
      {[](auto& c) { c["eos_token_id"] = 999; }, "outside the vocabulary"},
      {[](auto& c) { c.erase("decoder"); }, "'decoder' is missing"},
  };
  for (const auto& test_case : cases) {
    auto edited = original;
    test_case.edit(edited);
    SCOPED_TRACE(test_case.expected);
    write_json(scratch.path("config.json"), edited);
    EXPECT_ERROR_CONTAINS(load_model_config(scratch.root()), "config.json", test_case.expected);
  }
  write_file(scratch.path("config.json"), "");
  EXPECT_ERROR_CONTAINS(load_model_config(scratch.root()), "config.json", "empty file");
  write_file(scratch.path("config.json"), "{\"model_type\": ");
  EXPECT_ERROR_CONTAINS(load_model_config(scratch.root()), "config.json", "invalid JSON");
}

TEST(PreprocessConfig, ReadsBothFileLayouts) {
  const PreprocessConfig legacy = load_preprocess_config(model_dir("vit-proj"));
  EXPECT_EQ(legacy.height, 36);
  EXPECT_FLOAT_EQ(legacy.image_mean[0], 0.485f);
  EXPECT_FLOAT_EQ(legacy.image_std[2], 0.225f);
  const PreprocessConfig nested = load_preprocess_config(model_dir("deit-bpe"));
  EXPECT_EQ(nested.width, 32);
  EXPECT_NE(nested.source.find("processor_config.json"), std::string::npos);
}

TEST(PreprocessConfig, RejectsOtherPipelines) {
  ScratchDir scratch;
  copy_model_dir("vit-char", scratch.root());
  const auto original = read_json(scratch.path("preprocessor_config.json"));
  const std::vector<std::pair<nlohmann::json, const char*>> edits = {
      {{{"resample", 3}}, "BILINEAR"},
      {{{"image_processor_type", "CLIPImageProcessor"}}, "CLIPImageProcessor"},
      {{{"size", {{"shortest_edge", 224}}}}, "height, width"},
      {{{"image_std", {0.5, 0, 0.5}}}, "zero"},
      {{{"image_mean", {0.5, 0.5}}}, "3 numbers"},
      {{{"do_center_crop", true}}, "center cropping"},
  };
  for (const auto& [edit, expected] : edits) {
    auto edited = original;
    edited.update(edit);
    write_json(scratch.path("preprocessor_config.json"), edited);
    EXPECT_ERROR_CONTAINS(load_preprocess_config(scratch.root()), "preprocessor_config.json", expected);
  }
  std::remove(scratch.path("preprocessor_config.json").c_str());
  EXPECT_ERROR_CONTAINS(load_preprocess_config(scratch.root()), "no preprocessor_config.json");
}

}  // namespace
}  // namespace trocr::test

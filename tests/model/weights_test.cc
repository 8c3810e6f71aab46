// Weights are taken by name and shape from config.json; anything else is an error.
#include <cmath>
#include <filesystem>

#include "model/model_directory.h"
#include "model/weights.h"
#include "support/test_support.h"
#include "trocr/error.h"

namespace trocr::test {
namespace {

TEST(Weights, LoadEveryGoldenModelWithNothingLeftOver) {
  for (const auto& variant : golden_variants()) {
    SCOPED_TRACE(variant);
    const ModelDirectory model = load_model_directory(model_dir(variant));
    const ModelConfig& config = model.config;
    EXPECT_EQ(model.weights.encoder.layers.size(), static_cast<size_t>(config.encoder.num_layers));
    EXPECT_EQ(model.weights.decoder.layers.size(), static_cast<size_t>(config.decoder.num_layers));
    EXPECT_EQ(model.weights.encoder_to_decoder.has_value(), config.has_encoder_to_decoder_projection());
    EXPECT_EQ(model.weights.encoder.patch_projection.weight.shape,
              (std::vector<int64_t>{config.encoder.hidden_size, 3 * config.encoder.patch_size *
                                                                    config.encoder.patch_size}));
    // The parameter count is the stored tensors (tied ones once, unused pooler included).
    const Checkpoint checkpoint = read_checkpoint(model.weights_path);
    int64_t stored = 0;
    for (const auto& [name, record] : checkpoint.tensors) stored += record.element_count();
    EXPECT_EQ(model.weights.parameter_count, stored);
  }
}

TEST(Weights, TiedOutputProjectionIsTheEmbedding) {
  const ModelDirectory model = load_model_directory(model_dir("deit-bpe"));
  EXPECT_EQ(model.weights.decoder.output_projection.values, model.weights.decoder.embed_tokens.values);
  const ModelDirectory untied = load_model_directory(model_dir("vit-char"));
  EXPECT_NE(untied.weights.decoder.output_projection.values, untied.weights.decoder.embed_tokens.values);
}

TEST(Weights, PytorchBinGivesTheSameWeights) {
  ScratchDir scratch;
  copy_model_dir("vit-char", scratch.root());
  std::filesystem::remove(scratch.path("model.safetensors"));
  const ModelDirectory from_bin = load_model_directory(scratch.root());
  const ModelDirectory from_safetensors = load_model_directory(model_dir("vit-char"));
  EXPECT_NE(from_bin.weights_path.find("pytorch_model.bin"), std::string::npos);
  EXPECT_EQ(from_bin.weights.decoder.embed_tokens.values,
            from_safetensors.weights.decoder.embed_tokens.values);
  EXPECT_EQ(from_bin.weights.encoder.layers[1].value.weight.values,
            from_safetensors.weights.encoder.layers[1].value.weight.values);
}

TEST(Weights, SinusoidalTableMatchesHandComputedValues) {
  const HostTensor table = sinusoidal_positions(10, 6, 1);
  // half = 3, frequencies exp(-i * ln(10000) / 2) = 1, 0.01, 0.0001.
  EXPECT_FLOAT_EQ(table.values[2 * 6 + 0], std::sin(2.0f));
  EXPECT_FLOAT_EQ(table.values[2 * 6 + 1], std::sin(0.02f));
  EXPECT_FLOAT_EQ(table.values[2 * 6 + 3], std::cos(2.0f));
  EXPECT_FLOAT_EQ(table.values[9 * 6 + 5], std::cos(0.0009f));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(table.values[1 * 6 + i], 0.0f);  // the padding row
}

class BrokenWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    copy_model_dir("vit-char", scratch_.root());
    std::filesystem::remove(scratch_.path("pytorch_model.bin"));
    original_ = std::make_unique<Checkpoint>(read_checkpoint(model_dir("vit-char") + "/model.safetensors"));
  }
  ScratchDir scratch_;
  std::unique_ptr<Checkpoint> original_;
};

TEST_F(BrokenWeights, MissingTensor) {
  write_safetensors(scratch_.path("model.safetensors"), *original_,
                    {"decoder.model.decoder.layers.1.fc2.bias"});
  EXPECT_ERROR_CONTAINS(load_model_directory(scratch_.root()), "model.safetensors",
                        "'decoder.model.decoder.layers.1.fc2.bias' [32] is missing");
}

TEST_F(BrokenWeights, UnexpectedTensor) {
  Checkpoint extended = read_checkpoint(model_dir("vit-char") + "/model.safetensors");
  extended.tensors["decoder.model.decoder.layers.7.fc1.weight"] =
      extended.tensors.at("decoder.model.decoder.layers.0.fc1.weight");
  write_safetensors(scratch_.path("model.safetensors"), extended);
  EXPECT_ERROR_CONTAINS(load_model_directory(scratch_.root()), "unexpected tensor",
                        "'decoder.model.decoder.layers.7.fc1.weight'");
}

TEST_F(BrokenWeights, WrongShape) {
  auto config = read_json(scratch_.path("config.json"));
  config["decoder"]["decoder_ffn_dim"] = 80;
  write_json(scratch_.path("config.json"), config);
  EXPECT_ERROR_CONTAINS(load_model_directory(scratch_.root()),
                        "'decoder.model.decoder.layers.0.fc1.weight' has shape [64, 32], expected [80, 32]");
}

TEST_F(BrokenWeights, IntegerTensor) {
  Checkpoint edited = read_checkpoint(model_dir("vit-char") + "/model.safetensors");
  edited.tensors.at("encoder.layernorm.bias").dtype = DType::I32;
  write_safetensors(scratch_.path("model.safetensors"), edited);
  EXPECT_ERROR_CONTAINS(load_model_directory(scratch_.root()), "'encoder.layernorm.bias' is I32");
}

TEST_F(BrokenWeights, NoWeightsFile) {
  std::filesystem::remove(scratch_.path("model.safetensors"));
  EXPECT_ERROR_CONTAINS(load_model_directory(scratch_.root()), "no model.safetensors or pytorch_model.bin");
}

TEST_F(BrokenWeights, ImageSizeDisagreesWithEncoder) {
  auto config = read_json(scratch_.path("preprocessor_config.json"));
  config["size"] = {{"height", 64}, {"width", 64}};
  write_json(scratch_.path("preprocessor_config.json"), config);
  EXPECT_ERROR_CONTAINS(load_model_directory(scratch_.root()), "resizes to 64x64", "expects 40x40");
}

TEST(ModelDirectory, NotADirectory) {
  EXPECT_ERROR_CONTAINS(load_model_directory("/nonexistent/model"), "/nonexistent/model", "not a directory");
}

}  // namespace
}  // namespace trocr::test

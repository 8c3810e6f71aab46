// The CUDA engine against HF goldens: fp32 gives HF's ids on every setting; fp16 and bf16 give
// HF's ids on the goldens and logits within their precision. Skips without a GPU.
#include <algorithm>
#include <cmath>

#include "cuda/device_info.h"
#include "formats/checkpoint.h"
#include "support/test_support.h"
#include "trocr/recognizer.h"

namespace trocr::test {
namespace {

struct Precision {
  const char* dtype;
  double encoder_tolerance;  // max |ours - hf| / max |hf|
  double logits_tolerance;
  // Share of generated sequences identical to HF fp32 that must be kept. fp32 must match
  // exactly. In fp16/bf16 a near-tie between the two best tokens of these random-weight
  // models can flip and change the rest of the line. Measured on an H100: fp16 71/72 (at
  // 3d85967) and 70/72 (vit-char 21/24, with the tensor-core GEMV); bf16 57/72 (vit-char
  // 15/24). The floors are a guard; the real check is that every greedy difference starts at
  // a near-tie (GeneratedIdsMatchHf).
  double identical_share;
};

const Precision kPrecisions[] = {{"fp32", 1e-4, 1e-4, 1.0},
                                 {"fp16", 1e-2, 2e-2, 0.85},
                                 {"bf16", 5e-2, 8e-2, 0.6}};

// Where a greedy sequence first leaves HF's, the two tokens must be a near-tie in HF's logits
// (here the CPU engine's, which equal HF's within 1e-4): with every logit within
// `tolerance * max |logit|` of HF's, only tokens at most twice that apart can swap.
void expect_near_tie(const Recognizer& oracle, const std::vector<float>& pixels, const std::vector<int>& expected,
                     const std::vector<int>& ours, double tolerance, const std::string& where) {
  size_t first = 0;
  while (first < expected.size() && first < ours.size() && expected[first] == ours[first]) ++first;
  if (first == 0 || first >= expected.size() || first >= ours.size()) return;
  const std::vector<int> prefix(expected.begin(), expected.begin() + first + 1);
  const std::vector<float> logits = oracle.decoder_logits(pixels, prefix);
  const size_t vocab = logits.size() / (prefix.size() - 1);
  const float* row = logits.data() + (first - 1) * vocab;
  float largest = 0.0f;
  for (size_t t = 0; t < vocab; ++t) largest = std::max(largest, std::fabs(row[t]));
  const float gap = row[expected[first]] - row[ours[first]];
  EXPECT_LE(gap, 2.0 * tolerance * largest)
      << where << ": the sequences part at position " << first << " where HF's token leads ours by " << gap
      << " (logits up to " << largest << ")";
}

class CudaGolden : public ::testing::TestWithParam<std::tuple<std::string, Precision>> {
 protected:
  void SetUp() override {
    if (list_cuda_devices().empty()) GTEST_SKIP() << "no CUDA device";
    variant_ = std::get<0>(GetParam());
    precision_ = std::get<1>(GetParam());
    record_ = read_json(model_dir(variant_) + "/golden.json");
    golden_ = std::make_unique<Checkpoint>(read_checkpoint(model_dir(variant_) + "/golden.safetensors"));
    EngineOptions options;
    options.device = "cuda";
    options.dtype = precision_.dtype;
    recognizer_ = std::make_unique<Recognizer>(model_dir(variant_), options);
    cpu_ = std::make_unique<Recognizer>(model_dir(variant_));
  }
  std::string variant_;
  Precision precision_{};
  nlohmann::json record_;
  std::unique_ptr<Checkpoint> golden_;
  std::unique_ptr<Recognizer> recognizer_, cpu_;
};

TEST_P(CudaGolden, EncoderAndLogits) {
  for (const auto& [image, entry] : record_["images"].items()) {
    const auto pixels = golden_tensor(*golden_, image + "/pixel_values");
    EXPECT_LE(relative_error(recognizer_->encode(pixels, 1), golden_tensor(*golden_, image + "/encoder_hidden")),
              precision_.encoder_tolerance) << image;
    const auto ids = entry["generate"]["greedy"]["ids"][0].get<std::vector<int>>();
    EXPECT_LE(relative_error(recognizer_->decoder_logits(pixels, ids), golden_tensor(*golden_, image + "/greedy_logits")),
              precision_.logits_tolerance) << image;
  }
}

TEST_P(CudaGolden, GeneratedIdsMatchHf) {
  int compared = 0, identical = 0;
  for (const auto& [image, entry] : record_["images"].items()) {
    const auto pixels = golden_tensor(*golden_, image + "/pixel_values");
    for (const char* name : {"greedy", "greedy_min4", "greedy_norepeat2", "checkpoint_default"}) {
      const auto& hf = entry["generate"][name];
      GenerationConfig settings = recognizer_->default_generation();
      if (std::string(name) != "checkpoint_default") {
        settings.num_beams = 1;
        settings.max_length = 16;
        settings.no_repeat_ngram_size = std::string(name) == "greedy_norepeat2" ? 2 : 0;
        settings.min_length = std::string(name) == "greedy_min4" ? 4 : 0;
      }
      const auto result = recognizer_->recognize_pixels(pixels, 1, settings);
      std::vector<int> ours = result[0].best().ids;
      const auto expected = hf["ids"][0].get<std::vector<int>>();
      ours.resize(std::max(ours.size(), expected.size()), settings.tokens.pad);
      ++compared;
      identical += ours == expected;
      if (std::string(precision_.dtype) == "fp32") {
        EXPECT_EQ(ours, expected) << variant_ << " " << image << " " << name;
      } else if (std::string(name) != "checkpoint_default") {  // beam search ranks sums, not one step
        expect_near_tie(*cpu_, pixels, expected, ours, precision_.logits_tolerance,
                        variant_ + " " + image + " " + name);
      }
    }
  }
  RecordProperty("identical", identical);
  RecordProperty("compared", compared);
  std::printf("%s %s: %d of %d generated sequences identical to HF\n", variant_.c_str(),
              precision_.dtype, identical, compared);
  EXPECT_GE(identical, precision_.identical_share * compared);
}

INSTANTIATE_TEST_SUITE_P(
    HfModels, CudaGolden,
    ::testing::Combine(::testing::Values("vit-char", "deit-bpe", "vit-proj"), ::testing::ValuesIn(kPrecisions)),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param).dtype;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// Beam search and batching on the GPU, against the CPU engine (itself checked against HF).
TEST(CudaEngine, BatchedBeamSearchMatchesTheCpuEngine) {
  if (list_cuda_devices().empty()) GTEST_SKIP() << "no CUDA device";
  EngineOptions cuda;
  cuda.device = "cuda";
  const Recognizer gpu(model_dir("vit-char"), cuda);
  const Recognizer cpu(model_dir("vit-char"));
  std::vector<RgbImage> images;
  for (const char* name : {"line_rgb.png", "wide.jpg", "tiny.png", "palette.png", "line_gray.png"}) {
    images.push_back(read_image_file(data_dir() + "/images/" + name));
  }
  const auto a = gpu.recognize(images), b = cpu.recognize(images);  // beam 4, trocr-chinese settings
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].best().ids, b[i].best().ids) << i;
    EXPECT_EQ(a[i].best().text, b[i].best().text) << i;
    EXPECT_NEAR(a[i].best().score, b[i].best().score, 1e-3) << i;
  }
}

}  // namespace
}  // namespace trocr::test

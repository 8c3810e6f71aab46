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

std::vector<RgbImage> beam_test_images() {
  std::vector<RgbImage> images;
  for (const char* name : {"line_rgb.png", "wide.jpg", "tiny.png", "palette.png", "line_gray.png"}) {
    images.push_back(read_image_file(data_dir() + "/images/" + name));
  }
  return images;
}

// The checkpoint's settings (trocr-chinese's: beam 4, no_repeat_ngram 3, length_penalty 2,
// early stopping), then settings that reach each other rule of HF's beam search: early stopping
// false and "never", a negative length penalty, min_length, several candidates returned, two
// beams and the most the device search takes.
std::vector<GenerationConfig> beam_settings(const GenerationConfig& checkpoint) {
  std::vector<GenerationConfig> all = {checkpoint};
  const auto add = [&](int beams, EarlyStopping early_stopping, double length_penalty, int ngram, int min_length,
                       int returned) {
    GenerationConfig settings = checkpoint;
    settings.num_beams = beams;
    settings.early_stopping = early_stopping;
    settings.length_penalty = length_penalty;
    settings.no_repeat_ngram_size = ngram;
    settings.min_length = min_length;
    settings.num_return_sequences = returned;
    settings.max_new_tokens.reset();
    settings.max_length = 14;
    all.push_back(settings);
  };
  add(3, EarlyStopping::False, 1.0, 0, 0, 2);
  add(2, EarlyStopping::Never, 0.5, 2, 5, 1);
  add(5, EarlyStopping::True, -0.5, 0, 3, 3);
  add(16, EarlyStopping::Never, -1.0, 3, 0, 2);
  return all;
}

void expect_same_candidates(const std::vector<Recognition>& a, const std::vector<Recognition>& b, double tolerance,
                            const std::string& where) {
  ASSERT_EQ(a.size(), b.size()) << where;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].candidates.size(), b[i].candidates.size()) << where << " image " << i;
    for (size_t r = 0; r < a[i].candidates.size(); ++r) {
      EXPECT_EQ(a[i].candidates[r].ids, b[i].candidates[r].ids) << where << " image " << i << " candidate " << r;
      EXPECT_EQ(a[i].candidates[r].text, b[i].candidates[r].text) << where << " image " << i << " candidate " << r;
      EXPECT_NEAR(a[i].candidates[r].score, b[i].candidates[r].score, tolerance) << where << " image " << i;
      EXPECT_NEAR(a[i].candidates[r].mean_token_probability, b[i].candidates[r].mean_token_probability, tolerance)
          << where << " image " << i;
    }
  }
}

// Beam search and batching on the GPU (its bookkeeping on the device), against the CPU engine
// (itself checked against HF).
TEST(CudaEngine, BatchedBeamSearchMatchesTheCpuEngine) {
  if (list_cuda_devices().empty()) GTEST_SKIP() << "no CUDA device";
  EngineOptions cuda;
  cuda.device = "cuda";
  const Recognizer gpu(model_dir("vit-char"), cuda);
  const Recognizer cpu(model_dir("vit-char"));
  const auto images = beam_test_images();
  int index = 0;
  for (const GenerationConfig& settings : beam_settings(gpu.default_generation())) {
    expect_same_candidates(gpu.recognize(images, settings), cpu.recognize(images, settings), 1e-3,
                           "settings " + std::to_string(index++));
  }
}

// The device-side bookkeeping against the host's (src/decoding/beam_search.cc) over the same
// GPU decoder, in fp32 and fp16: the same candidates, and scores that differ only where the
// two paths ran a different number of rows through the decoder (they shrink the batch at
// different steps).
TEST(CudaEngine, DeviceBeamSearchMatchesHostBookkeeping) {
  if (list_cuda_devices().empty()) GTEST_SKIP() << "no CUDA device";
  const auto images = beam_test_images();
  for (const char* dtype : {"fp32", "fp16"}) {
    EngineOptions options;
    options.device = "cuda";
    options.dtype = dtype;
    const Recognizer device(model_dir("deit-bpe"), options);
    options.device_beam_search = false;
    const Recognizer host(model_dir("deit-bpe"), options);
    int index = 0;
    for (const GenerationConfig& settings : beam_settings(device.default_generation())) {
      expect_same_candidates(device.recognize(images, settings), host.recognize(images, settings), 1e-4,
                             std::string(dtype) + " settings " + std::to_string(index++));
    }
  }
}

}  // namespace
}  // namespace trocr::test

// The CPU engine against HF transformers (goldens made by python/make_goldens.py on the GPU
// machine): encoder output within 1e-5 relative, teacher-forced logits within 1e-4, and every
// generate() setting's ids, text and scores, image by image and batched.
#include <cmath>
#include <map>
#include <thread>

#include "formats/checkpoint.h"
#include "support/in_flight.h"
#include "support/test_support.h"
#include "trocr/recognizer.h"

namespace trocr::test {
namespace {

// An unknown dtype is refused by name, with every accepted one (engine_dtypes(), the one list).
TEST(EngineOptions, UnknownDtypeNamesTheAcceptedOnes) {
  EngineOptions options;
  options.dtype = "fp64";
  EXPECT_ERROR_CONTAINS(Recognizer(model_dir("vit-char"), options), "dtype 'fp64': expected one of fp32, fp16, bf16, fp8");
}

// HF pads shorter rows of a batch with pad_token_id; ours are unpadded.
void expect_same_ids(std::vector<int> ours, const std::vector<int>& hf, int pad,
                     const std::string& where) {
  EXPECT_LE(ours.size(), hf.size()) << where;
  ours.resize(std::max(ours.size(), hf.size()), pad);
  EXPECT_EQ(ours, hf) << where;
}

// Scores are sums of log-probabilities (times length^-penalty): float32 rounding grows with
// their magnitude, so the tolerance is relative.
void expect_score_near(double ours, double hf, const std::string& where) {
  EXPECT_NEAR(ours, hf, 1e-5 * std::max(10.0, std::fabs(hf))) << where;
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = model_dir(GetParam());
    record_ = read_json(dir_ + "/golden.json");
    golden_ = std::make_unique<Checkpoint>(read_checkpoint(dir_ + "/golden.safetensors"));
    recognizer_ = std::make_unique<Recognizer>(dir_);
  }
  std::string dir_;
  nlohmann::json record_;
  std::unique_ptr<Checkpoint> golden_;
  std::unique_ptr<Recognizer> recognizer_;
};

TEST_P(Golden, EncoderOutput) {
  int checked = 0;
  for (const auto& [image, entry] : record_.at("images").items()) {
    const auto pixels = golden_tensor(*golden_, image + "/pixel_values");
    const auto expected = golden_tensor(*golden_, image + "/encoder_hidden");
    const auto ours = recognizer_->encode(pixels, 1);
    EXPECT_LE(relative_error(ours, expected), 1e-5) << image;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST_P(Golden, TeacherForcedLogits) {
  int checked = 0;
  for (const auto& [image, entry] : record_.at("images").items()) {
    const auto pixels = golden_tensor(*golden_, image + "/pixel_values");
    const auto expected = golden_tensor(*golden_, image + "/greedy_logits");
    const auto ids = entry.at("generate").at("greedy").at("ids").at(0).get<std::vector<int>>();
    EXPECT_LE(relative_error(recognizer_->decoder_logits(pixels, ids), expected), 1e-4) << image;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST_P(Golden, GenerateEveryImageAndSetting) {
  int compared = 0;
  for (const auto& [image, entry] : record_.at("images").items()) {
    const auto pixels = golden_tensor(*golden_, image + "/pixel_values");
    for (const auto& [name, hf] : entry.at("generate").items()) {
      const std::string where = GetParam() + " " + image + " " + name;
      const GenerationConfig settings = name == "checkpoint_default"
                                            ? recognizer_->default_generation()
                                            : case_settings(name, recognizer_->default_generation());
      const auto results = recognizer_->recognize_pixels(pixels, 1, settings);
      ASSERT_EQ(results.size(), 1u);
      const auto& candidates = results[0].candidates;
      ASSERT_EQ(candidates.size(), hf.at("ids").size()) << where;
      for (size_t r = 0; r < candidates.size(); ++r) {
        expect_same_ids(candidates[r].ids, hf.at("ids").at(r).get<std::vector<int>>(), settings.tokens.pad, where);
        EXPECT_EQ(candidates[r].text, hf.at("text").at(r).get<std::string>()) << where;
        if (hf.contains("sequences_scores")) {
          expect_score_near(candidates[r].score, hf.at("sequences_scores").at(r).get<double>(), where);
        }
      }
      if (hf.contains("token_probs")) {
        const auto probabilities = hf.at("token_probs").get<std::vector<double>>();
        double sum = 0.0, minimum = 1.0;
        for (double p : probabilities) sum += p, minimum = std::min(minimum, p);
        EXPECT_NEAR(candidates[0].mean_token_probability, sum / probabilities.size(), 1e-4) << where;
        EXPECT_NEAR(candidates[0].min_token_probability, minimum, 1e-4) << where;
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, 6 * 8);  // 7 settings and the checkpoint's default, for 6 images
}

TEST_P(Golden, BatchedGenerateFromImageFiles) {
  const auto& batch = record_.at("batch");
  std::vector<RgbImage> images;
  for (const auto& name : batch.at("images")) {
    images.push_back(read_image_file(data_dir() + "/images/" + name.get<std::string>()));
  }
  for (const char* name : {"greedy", "beam4_chinese", "beam3_lp1_return2"}) {
    const GenerationConfig settings = case_settings(name, recognizer_->default_generation());
    const auto results = recognizer_->recognize(images, settings);
    const auto& hf = batch.at(name);
    ASSERT_EQ(results.size(), images.size()) << name;
    size_t row = 0;
    for (const auto& result : results) {
      for (const auto& candidate : result.candidates) {
        const std::string where = std::string(name) + " row " + std::to_string(row);
        expect_same_ids(candidate.ids, hf.at("ids").at(row).get<std::vector<int>>(), settings.tokens.pad, where);
        EXPECT_EQ(candidate.text, hf.at("text").at(row).get<std::string>()) << where;
        if (hf.contains("sequences_scores")) {
          expect_score_near(candidate.score, hf.at("sequences_scores").at(row).get<double>(), where);
        }
        ++row;
      }
    }
    EXPECT_EQ(row, hf.at("ids").size()) << name;
  }
}

// In-flight batching: lines join a running batch one image per step (so that lines of one step
// stand at different positions, and an ended line's slot is taken by the next image) and must
// each give HF's ids, text and token probabilities, under every greedy setting of the goldens.
TEST_P(Golden, InFlightLinesGiveHfAnswersWhereverTheyJoin) {
  const auto [names, images] = read_golden_images(record_);
  for (const char* name : {"greedy", "greedy_min4", "greedy_norepeat2"}) {
    const GenerationConfig settings = case_settings(name, recognizer_->default_generation());
    const InFlightResult in_flight = recognize_in_flight(*recognizer_, images, settings, 3, 1);
    for (size_t i = 0; i < images.size(); ++i) {
      const auto& hf = record_.at("images").at(names[i]).at("generate").at(name);
      const std::string where = GetParam() + " " + names[i] + " " + name + " (in flight)";
      expect_same_ids(in_flight.results[i].best().ids, hf.at("ids").at(0).get<std::vector<int>>(), settings.tokens.pad,
                      where);
      EXPECT_EQ(in_flight.results[i].best().text, hf.at("text").at(0).get<std::string>()) << where;
    }
    EXPECT_EQ(in_flight.most_active, 3) << name << ": lines admitted a step apart must have run side by side";
  }
  // Beam search runs in whole batches; more images than free lines is an error, not a crash.
  EXPECT_FALSE(recognizer_->open_stream(case_settings("beam4_chinese", recognizer_->default_generation()), 3));
  const auto stream = recognizer_->open_stream(case_settings("greedy", recognizer_->default_generation()), 1);
  ASSERT_TRUE(stream);
  EXPECT_THROW(stream->admit({images[0], images[1]}), Error);
}

INSTANTIATE_TEST_SUITE_P(HfModels, Golden, ::testing::Values("vit-char", "deit-bpe", "vit-proj"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The thread count changes how the CPU engine splits its work (attention takes whole (image, head)
// pairs per thread when there are enough pairs, else batched products): HF's answers either way.
TEST(GoldenThreads, AnyThreadCountGivesHfAnswers) {
  const std::string dir = model_dir("vit-char");
  const nlohmann::json record = read_json(dir + "/golden.json");
  const Checkpoint golden = read_checkpoint(dir + "/golden.safetensors");
  for (int threads : {1, 7}) {
    EngineOptions options;
    options.threads = threads;
    const Recognizer recognizer(dir, options);
    GenerationConfig greedy = case_settings("greedy", recognizer.default_generation());
    int checked = 0;
    for (const auto& [image, entry] : record.at("images").items()) {
      const auto pixels = golden_tensor(golden, image + "/pixel_values");
      EXPECT_LE(relative_error(recognizer.encode(pixels, 1), golden_tensor(golden, image + "/encoder_hidden")), 1e-5)
          << image << ", " << threads << " threads";
      const auto results = recognizer.recognize_pixels(pixels, 1, greedy);
      expect_same_ids(results.at(0).best().ids, entry.at("generate").at("greedy").at("ids").at(0).get<std::vector<int>>(),
                      greedy.tokens.pad, image + ", " + std::to_string(threads) + " threads");
      ++checked;
    }
    EXPECT_EQ(checked, 6);
  }
}

TEST(GoldenBatchSize, SmallBatchesGiveTheSameAnswers) {
  EngineOptions options;
  options.batch_size = 2;
  const Recognizer batched(model_dir("vit-char"), options);
  const Recognizer whole(model_dir("vit-char"));
  std::vector<RgbImage> images;
  for (const char* name : {"line_rgb.png", "wide.jpg", "tiny.png"}) {
    images.push_back(read_image_file(data_dir() + "/images/" + name));
  }
  const auto a = batched.recognize(images), b = whole.recognize(images);
  ASSERT_EQ(a.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].best().ids, b[i].best().ids);
}

// The CPU engine keeps its workspaces between calls and gives concurrent callers one each: larger
// and smaller batches, greedy and beam search in turn, and two threads at once, all read HF's ids.
TEST(GoldenReuse, WorkspacesKeptBetweenCallsAndThreadsGiveHfAnswers) {
  const std::string dir = model_dir("vit-char");
  const nlohmann::json batch = read_json(dir + "/golden.json").at("batch");
  const Recognizer recognizer(dir);
  std::vector<RgbImage> images;
  for (const auto& name : batch.at("images")) {
    images.push_back(read_image_file(data_dir() + "/images/" + name.get<std::string>()));
  }
  const auto check = [&](const char* name, const std::vector<RgbImage>& some, const std::string& where) {
    const GenerationConfig settings = case_settings(name, recognizer.default_generation());
    const auto results = recognizer.recognize(some, settings);
    for (size_t i = 0; i < results.size(); ++i) {
      expect_same_ids(results[i].best().ids, batch.at(name).at("ids").at(i).get<std::vector<int>>(),
                      settings.tokens.pad, where + " " + name + " row " + std::to_string(i));
    }
  };
  ASSERT_GE(images.size(), 2u);
  check("greedy", {images[0]}, "one image first");
  check("beam4_chinese", images, "then a batch with beams");
  check("greedy", {images[0]}, "one image after the batch");
  check("greedy", images, "the batch greedy");
  std::vector<std::thread> callers;
  for (const char* name : {"greedy", "beam4_chinese"}) {
    callers.emplace_back([&, name] {
      for (int round = 0; round < 3; ++round) check(name, images, "concurrent round " + std::to_string(round));
    });
  }
  for (std::thread& caller : callers) caller.join();
}

}  // namespace
}  // namespace trocr::test

// The fp16/bf16 near-tie guard (support/near_tie.h) itself, on the CPU with HF's golden logits:
// it must accept a divergence where HF nearly tied and reject one anywhere else, so that the GPU
// tests that rely on it can fail.
#include <gtest/gtest-spi.h>

#include <algorithm>

#include "formats/checkpoint.h"
#include "support/near_tie.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

struct GreedyCase {
  std::vector<float> pixels;
  std::vector<int> ids;     // HF's greedy ids
  std::vector<float> logits;  // HF's logits for them: [ids.size() - 1, vocab]
  size_t vocab = 0;
};

GreedyCase golden_case(const std::string& variant, const std::string& image) {
  const Checkpoint golden = read_checkpoint(model_dir(variant) + "/golden.safetensors");
  GreedyCase result;
  result.pixels = golden_tensor(golden, image + "/pixel_values");
  result.ids = read_json(model_dir(variant) + "/golden.json")
                   .at("images").at(image).at("generate").at("greedy").at("ids").at(0).get<std::vector<int>>();
  result.logits = golden_tensor(golden, image + "/greedy_logits");
  result.vocab = result.logits.size() / (result.ids.size() - 1);
  return result;
}

// HF's runner-up token at `position` and its gap to HF's token there.
std::pair<int, float> runner_up(const GreedyCase& greedy, size_t position) {
  const float* row = greedy.logits.data() + (position - 1) * greedy.vocab;
  int second = -1;
  for (size_t t = 0; t < greedy.vocab; ++t) {
    if (int(t) == greedy.ids[position]) continue;
    if (second < 0 || row[t] > row[second]) second = int(t);
  }
  return {second, row[greedy.ids[position]] - row[second]};
}

// The golden "greedy" case's settings: one beam, no n-gram ban.
GenerationConfig greedy_settings(const Recognizer& oracle) {
  GenerationConfig settings = oracle.default_generation();
  settings.num_beams = 1;
  settings.no_repeat_ngram_size = 0;
  return settings;
}

TEST(NearTieGuard, AcceptsADivergenceOnlyWhereHfNearlyTied) {
  const GreedyCase greedy = golden_case("vit-char", "line_rgb.png");
  const Recognizer oracle(model_dir("vit-char"));
  const GenerationConfig settings = greedy_settings(oracle);
  // The position where HF's two best tokens are closest, and the one where they are farthest.
  size_t closest = 1, farthest = 1;
  for (size_t p = 1; p < greedy.ids.size(); ++p) {
    if (runner_up(greedy, p).second < runner_up(greedy, closest).second) closest = p;
    if (runner_up(greedy, p).second > runner_up(greedy, farthest).second) farthest = p;
  }
  const float tie_gap = runner_up(greedy, closest).second, lead_gap = runner_up(greedy, farthest).second;
  ASSERT_LT(tie_gap * 4, lead_gap) << "the golden line needs a near-tie and a clear lead";
  const double window = 2 * tie_gap;  // a dtype's worst logit error between the two gaps

  std::vector<int> ours = greedy.ids;
  ours[closest] = runner_up(greedy, closest).first;
  const auto at_tie = first_divergence(oracle, greedy.pixels, greedy.ids, ours, settings);
  ASSERT_TRUE(at_tie.has_value());
  EXPECT_EQ(at_tie->position, closest);
  EXPECT_NEAR(at_tie->hf_gap, tie_gap, 1e-4);
  EXPECT_TRUE(expect_divergence_at_near_tie(oracle, greedy.pixels, greedy.ids, ours, settings, window, "tie"));

  ours = greedy.ids;
  ours[farthest] = runner_up(greedy, farthest).first;
  EXPECT_NONFATAL_FAILURE(
      expect_divergence_at_near_tie(oracle, greedy.pixels, greedy.ids, ours, settings, window, "lead"),
      "more than the dtype's worst logit error");
  EXPECT_FALSE(expect_divergence_at_near_tie(oracle, greedy.pixels, greedy.ids, greedy.ids, settings, window, "same"));
}

// A token that HF's rules ban at that position is no tie, however close its logit.
TEST(NearTieGuard, RejectsATokenHfsRulesBan) {
  const GreedyCase greedy = golden_case("vit-char", "line_rgb.png");
  const Recognizer oracle(model_dir("vit-char"));
  GenerationConfig settings = greedy_settings(oracle);
  settings.min_length = int(greedy.ids.size()) + 5;  // end-of-sequence banned everywhere
  std::vector<int> ours = greedy.ids;
  ours[2] = settings.tokens.eos;
  const auto divergence = first_divergence(oracle, greedy.pixels, greedy.ids, ours, settings);
  ASSERT_TRUE(divergence.has_value());
  EXPECT_EQ(divergence->position, 2u);
  EXPECT_EQ(divergence->hf_gap, std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace trocr::test

// Decoding rules on a scripted model whose logits are written by hand, so that each expected
// sequence can be worked out on paper.
#include <cmath>
#include <map>

#include "decoding/logits_processors.h"
#include "decoding/search.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

TEST(LogitsProcessors, NoRepeatNgramBansCompletionsOfSeenNgrams) {
  std::vector<float> scores(10, 0.0f);
  // Sequence 0 5 6 0 5: the 3-grams seen are (0 5 6), (5 6 0), (6 0 5); the current prefix is
  // (0 5), so 6 is banned; nothing else is.
  apply_no_repeat_ngram({0, 5, 6, 0, 5}, 3, scores.data());
  for (int t = 0; t < 10; ++t) EXPECT_EQ(std::isinf(scores[t]), t == 6) << t;
  std::vector<float> bigram(10, 0.0f);
  apply_no_repeat_ngram({0, 5, 6, 5}, 2, bigram.data());  // prefix (5): seen 5->6
  EXPECT_TRUE(std::isinf(bigram[6]));
  std::vector<float> short_sequence(10, 0.0f);
  apply_no_repeat_ngram({0}, 3, short_sequence.data());  // shorter than n-1: nothing banned
  for (float s : short_sequence) EXPECT_EQ(s, 0.0f);
}

TEST(LogitsProcessors, MinLengthBansEndUntilReached) {
  std::vector<float> scores(4, 1.0f);
  apply_min_length(2, 3, 2, scores.data());
  EXPECT_TRUE(std::isinf(scores[2]));
  std::vector<float> later(4, 1.0f);
  apply_min_length(3, 3, 2, later.data());
  EXPECT_EQ(later[2], 1.0f);
}

// Logits depend only on the last token: table[last] is the next-token log-probability row.
class ScriptedModel : public StepModel {
 public:
  explicit ScriptedModel(std::map<int, std::vector<float>> table) : table_(std::move(table)) {}
  int vocab_size() const override { return 4; }
  int max_length() const override { return 64; }
  void begin(const std::vector<int>& sources) override { last_.assign(sources.size(), -1); }
  void step(const std::vector<int>& slots, const std::vector<int>& tokens, int, float* logits) override {
    for (size_t i = 0; i < slots.size(); ++i) {
      const auto& row = table_.at(tokens[i]);
      std::copy(row.begin(), row.end(), logits + i * 4);
      ++steps_;
    }
  }
  void reorder(const std::vector<int>&, const std::vector<int>&, int) override {}
  int steps() const { return steps_; }

 private:
  std::map<int, std::vector<float>> table_;
  std::vector<int> last_;
  int steps_ = 0;
};

std::vector<float> log_probabilities(std::vector<double> probabilities) {
  std::vector<float> row;
  for (double p : probabilities) row.push_back(static_cast<float>(std::log(p)));
  return row;
}

TEST(Search, GreedyStopsAtEndAndReportsProbabilities) {
  // Tokens: 0 start, 1 "a", 2 end, 3 "b". From start: a (0.6); from a: b (0.5); from b: end (0.9).
  ScriptedModel model({{0, log_probabilities({0.05, 0.6, 0.05, 0.3})},
                       {1, log_probabilities({0.1, 0.1, 0.3, 0.5})},
                       {3, log_probabilities({0.02, 0.04, 0.9, 0.04})}});
  SearchOptions options;
  options.decoder_start = 0;
  options.eos = 2;
  options.max_length = 10;
  const auto result = greedy_search(model, 1, options);
  EXPECT_EQ(result[0][0].ids, (std::vector<int>{0, 1, 3, 2}));
  EXPECT_NEAR(result[0][0].mean_token_probability, (0.6 + 0.5 + 0.9) / 3, 1e-6);
  EXPECT_NEAR(result[0][0].min_token_probability, 0.5, 1e-6);
  EXPECT_NEAR(result[0][0].score, (std::log(0.6) + std::log(0.5) + std::log(0.9)) / 3, 1e-6);
  EXPECT_EQ(model.steps(), 3);
}

TEST(Search, GreedyRespectsMaxAndMinLength) {
  ScriptedModel model({{0, log_probabilities({0.1, 0.2, 0.6, 0.1})},
                       {1, log_probabilities({0.1, 0.5, 0.3, 0.1})}});
  SearchOptions options;
  options.decoder_start = 0;
  options.eos = 2;
  options.max_length = 4;
  options.min_length = 3;  // end is banned while the sequence has fewer than 3 tokens
  const auto result = greedy_search(model, 1, options);
  // Step 1: end banned -> a. Step 2 (length 2 < 3): end banned -> a. Length 3 -> max 4: a.
  EXPECT_EQ(result[0][0].ids, (std::vector<int>{0, 1, 1, 1}));
}

TEST(Search, BeamSearchPrefersTheBetterNormalisedEnding) {
  // From start: a 0.5, b 0.4. After a: end 0.3. After b: end 0.9.
  // Finished a-end: log(0.5*0.3) / 2 = -0.949; b-end: log(0.4*0.9) / 2 = -0.511 (penalty 1).
  ScriptedModel model({{0, log_probabilities({0.04, 0.5, 0.06, 0.4})},
                       {1, log_probabilities({0.1, 0.3, 0.3, 0.3})},
                       {3, log_probabilities({0.03, 0.03, 0.9, 0.04})}});
  SearchOptions options;
  options.decoder_start = 0;
  options.eos = 2;
  options.max_length = 6;
  options.num_beams = 2;
  options.num_return_sequences = 2;
  options.early_stopping = EarlyStopping::True;
  const auto result = beam_search(model, 1, options);
  EXPECT_EQ(result[0][0].ids, (std::vector<int>{0, 3, 2}));
  EXPECT_NEAR(result[0][0].score, std::log(0.4 * 0.9) / 2, 1e-6);
  ASSERT_EQ(result[0].size(), 2u);
}

TEST(Search, GenerateRejectsImpossibleSettings) {
  ScriptedModel model({{0, log_probabilities({0.25, 0.25, 0.25, 0.25})}});
  SearchOptions options;
  options.max_length = 100;  // the model holds 64
  EXPECT_ERROR_CONTAINS(generate(model, 1, options), "max_length 100", "64 positions");
  options.max_length = 1;
  EXPECT_ERROR_CONTAINS(generate(model, 1, options), "leaves no room");
  options.max_length = 8;
  options.num_beams = 2;
  options.num_return_sequences = 3;
  EXPECT_ERROR_CONTAINS(generate(model, 1, options), "num_return_sequences");
}

}  // namespace
}  // namespace trocr::test

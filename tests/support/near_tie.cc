#include "support/near_tie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <limits>

#include "decoding/logits_processors.h"

namespace trocr::test {

std::optional<GreedyDivergence> first_divergence(const Recognizer& oracle, const std::vector<float>& pixels,
                                                 const std::vector<int>& expected, const std::vector<int>& ours,
                                                 const GenerationConfig& settings) {
  size_t first = 0;
  while (first < expected.size() && first < ours.size() && expected[first] == ours[first]) ++first;
  if (first == expected.size() && first == ours.size()) return std::nullopt;
  GreedyDivergence divergence;
  divergence.position = first;
  divergence.hf_token = first < expected.size() ? expected[first] : -1;
  divergence.our_token = first < ours.size() ? ours[first] : -1;
  // A different start token, or one sequence running on past the other's end, is no near-tie.
  const std::vector<int> banned = first == 0 ? std::vector<int>{} : banned_tokens(
      std::vector<int>(expected.begin(), expected.begin() + first), settings.resolved_min_length(),
      settings.tokens.eos, settings.no_repeat_ngram_size);
  if (first == 0 || divergence.hf_token < 0 || divergence.our_token < 0 ||
      std::find(banned.begin(), banned.end(), divergence.our_token) != banned.end()) {
    divergence.hf_gap = std::numeric_limits<float>::infinity();
    return divergence;
  }
  const std::vector<int> prefix(expected.begin(), expected.begin() + first + 1);
  const std::vector<float> logits = oracle.decoder_logits(pixels, prefix);
  const size_t vocab = logits.size() / (prefix.size() - 1);
  const float* row = logits.data() + (first - 1) * vocab;
  divergence.hf_gap = row[divergence.hf_token] - row[divergence.our_token];
  return divergence;
}

bool expect_divergence_at_near_tie(const Recognizer& oracle, const std::vector<float>& pixels,
                                   const std::vector<int>& expected, const std::vector<int>& ours,
                                   const GenerationConfig& settings, double worst_logit_error,
                                   const std::string& where) {
  const auto divergence = first_divergence(oracle, pixels, expected, ours, settings);
  if (!divergence) return false;
  std::printf("%s: leaves HF at position %zu (HF %d, ours %d), HF's gap %.3g, worst logit error %.3g\n",
              where.c_str(), divergence->position, divergence->hf_token, divergence->our_token,
              double(divergence->hf_gap), worst_logit_error);
  EXPECT_LT(divergence->hf_gap, worst_logit_error)
      << where << ": the sequences part at position " << divergence->position << " where HF's token "
      << divergence->hf_token << " leads ours (" << divergence->our_token << ") by " << divergence->hf_gap
      << ", more than the dtype's worst logit error " << worst_logit_error;
  return true;
}

}  // namespace trocr::test

#pragma once
// The fp16/bf16 guard: a greedy sequence may leave HF's only where HF itself nearly tied.
// Greedy takes the largest logit; if every logit of ours is within E of HF's, ours can pick
// another token than HF only where HF's two logits are less than 2E apart. The guard accepts a
// divergence only where HF's gap between its token and ours is below the measured worst logit
// error E of the dtype: a divergence anywhere else is a bug, not rounding.
#include <optional>
#include <string>
#include <vector>

#include "trocr/recognizer.h"

namespace trocr::test {

struct GreedyDivergence {
  size_t position = 0;  // index into the ids (0 is the start token)
  int hf_token = 0, our_token = 0;
  float hf_gap = 0.0f;  // HF's logit of its token minus HF's logit of ours, at that position
};

// Where `ours` first leaves `expected` (HF's greedy ids), with HF's logits there taken from
// `oracle`, the fp32 CPU engine (within 1e-4 of HF on every golden); nullopt when they agree.
// A token of ours that HF's rules (`settings`' min_length and no_repeat_ngram) ban there is
// infinitely far from a tie.
std::optional<GreedyDivergence> first_divergence(const Recognizer& oracle, const std::vector<float>& pixels,
                                                 const std::vector<int>& expected, const std::vector<int>& ours,
                                                 const GenerationConfig& settings);

// Adds a test failure unless the divergence (if any) is a near-tie within `worst_logit_error`.
// Returns whether the sequences diverged.
bool expect_divergence_at_near_tie(const Recognizer& oracle, const std::vector<float>& pixels,
                                   const std::vector<int>& expected, const std::vector<int>& ours,
                                   const GenerationConfig& settings, double worst_logit_error,
                                   const std::string& where);

}  // namespace trocr::test

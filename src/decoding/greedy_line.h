#pragma once
// One line of greedy search, as HF's _sample without sampling: its logits processors, the first
// maximum, and the sums its score is made of. Whole-batch greedy search and in-flight batching
// (lines joining and leaving between steps) both advance lines through this.
#include <vector>

#include "decoding/search.h"

namespace trocr {

class GreedyLine {
 public:
  struct Choice {
    int token = 0;
    double log_probability = 0.0;
  };

  explicit GreedyLine(const SearchOptions& options) : ids_{options.decoder_start} {}

  const std::vector<int>& ids() const { return ids_; }
  // The position of the token it feeds next (tokens before it in its cache).
  int position() const { return static_cast<int>(ids_.size()) - 1; }
  // Applies the processors to this line's raw next-token logits (in place) and picks the token.
  // Safe on many lines at once, one thread each.
  Choice choose(const SearchOptions& options, float* scores, int vocab) const;
  void append(const Choice& choice);
  // Ended by end-of-sequence, or as long as max_length allows.
  bool finished(const SearchOptions& options) const;
  Hypothesis take_hypothesis();

 private:
  std::vector<int> ids_;
  double log_probability_sum_ = 0.0, probability_sum_ = 0.0;
  float min_probability_ = 1.0f;
};

// One step for `lines`: line i's token chosen from logits row i ([lines.size(), vocab]; the
// processors write into it), one line per thread, then appended.
void advance_lines(const std::vector<GreedyLine*>& lines, const SearchOptions& options, float* logits, int vocab);

}  // namespace trocr

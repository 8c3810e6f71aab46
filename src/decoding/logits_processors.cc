#include "decoding/logits_processors.h"

#include <cmath>

namespace trocr {

void apply_min_length(int sequence_length, int min_length, int eos, float* scores) {
  if (sequence_length < min_length) scores[eos] = -INFINITY;
}

void apply_no_repeat_ngram(const std::vector<int>& sequence, int ngram_size, float* scores) {
  const int length = static_cast<int>(sequence.size());
  if (ngram_size <= 0 || length + 1 < ngram_size) return;
  // The last n-1 tokens; every earlier n-gram starting with them bans its last token.
  const int prefix_start = length - (ngram_size - 1);
  for (int start = 0; start + ngram_size <= length; ++start) {
    bool same = true;
    for (int i = 0; i < ngram_size - 1 && same; ++i) {
      same = sequence[start + i] == sequence[prefix_start + i];
    }
    if (same) scores[sequence[start + ngram_size - 1]] = -INFINITY;
  }
}

}  // namespace trocr

#include "decoding/logits_processors.h"

#include <cmath>

namespace trocr {

void apply_min_length(int sequence_length, int min_length, int eos, float* scores) {
  if (sequence_length < min_length) scores[eos] = -INFINITY;
}

namespace {

// The last n-1 tokens; every earlier n-gram starting with them bans its last token.
template <typename Ban>
void for_each_repeated_ngram(const std::vector<int>& sequence, int ngram_size, Ban ban) {
  const int length = static_cast<int>(sequence.size());
  if (ngram_size <= 0 || length + 1 < ngram_size) return;
  const int prefix_start = length - (ngram_size - 1);
  for (int start = 0; start + ngram_size <= length; ++start) {
    bool same = true;
    for (int i = 0; i < ngram_size - 1 && same; ++i) {
      same = sequence[start + i] == sequence[prefix_start + i];
    }
    if (same) ban(sequence[start + ngram_size - 1]);
  }
}

}  // namespace

void apply_no_repeat_ngram(const std::vector<int>& sequence, int ngram_size, float* scores) {
  for_each_repeated_ngram(sequence, ngram_size, [&](int token) { scores[token] = -INFINITY; });
}

std::vector<int> banned_tokens(const std::vector<int>& sequence, int min_length, int eos,
                               int ngram_size) {
  std::vector<int> banned;
  if (static_cast<int>(sequence.size()) < min_length) banned.push_back(eos);
  for_each_repeated_ngram(sequence, ngram_size, [&](int token) { banned.push_back(token); });
  return banned;
}

}  // namespace trocr

#include "decoding/logits_processors.h"

#include <cmath>

#include "model/trocr_rules.h"

namespace trocr {

void apply_min_length(int sequence_length, int min_length, int eos, float* scores) {
  if (min_length_bans_eos(sequence_length, min_length)) scores[eos] = -INFINITY;
}

namespace {

template <typename Ban>
void for_each_repeated_ngram(const std::vector<int>& sequence, int ngram_size, Ban ban) {
  const int length = static_cast<int>(sequence.size());
  for (int start = 0; start < ngram_starts(length, ngram_size); ++start) {
    const int token = ngram_banned_token(sequence.data(), length, ngram_size, start);
    if (token >= 0) ban(token);
  }
}

}  // namespace

void apply_no_repeat_ngram(const std::vector<int>& sequence, int ngram_size, float* scores) {
  for_each_repeated_ngram(sequence, ngram_size, [&](int token) { scores[token] = -INFINITY; });
}

std::vector<int> banned_tokens(const std::vector<int>& sequence, int min_length, int eos,
                               int ngram_size) {
  std::vector<int> banned;
  if (min_length_bans_eos(static_cast<int>(sequence.size()), min_length)) banned.push_back(eos);
  for_each_repeated_ngram(sequence, ngram_size, [&](int token) { banned.push_back(token); });
  return banned;
}

}  // namespace trocr

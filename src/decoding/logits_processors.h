#pragma once
// HF's logits processors that TrOCR's settings use. Each bans tokens by writing -inf.
#include <vector>

namespace trocr {

// MinLengthLogitsProcessor: while the sequence (start token included) is shorter than
// min_length, end-of-sequence is banned.
void apply_min_length(int sequence_length, int min_length, int eos, float* scores);

// NoRepeatNGramLogitsProcessor: a token that would repeat an n-gram already in the sequence
// (start token included) is banned.
void apply_no_repeat_ngram(const std::vector<int>& sequence, int ngram_size, float* scores);

// The tokens both processors ban for `sequence`, for models that apply bans themselves.
std::vector<int> banned_tokens(const std::vector<int>& sequence, int min_length, int eos,
                               int ngram_size);

}  // namespace trocr

#pragma once
// TrOCR's and HF generate()'s rules that both engines follow, written once for host and device
// code: where a position's embedding row is, which tokens HF's processors ban, how beam search
// scores a finished sequence, and the sentinel it marks unusable entries with. The CPU engine
// and decoding/ call these on the host; the CUDA kernels call the same functions on the device.
#include <cmath>

#if defined(__CUDACC__)
#define TROCR_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TROCR_HOST_DEVICE inline
#endif

namespace trocr {

// HF's beam search marks unusable candidates and empty finished slots by adding -1e9 (not
// -inf): every beam search here uses this value, so that near-ties resolve as HF's do.
constexpr float kBeamSentinel = -1.0e9f;

// The decoder's position-embedding row for `position` (tokens before this one). Learned
// positions (TrOCRLearnedPositionalEmbedding) start at offset 2; sinusoidal ones, as HF computes
// them one cached step at a time, are pad + 1 + position, and the pad row for a pad token.
TROCR_HOST_DEVICE int position_row(bool learned_positions, int position, int token, int pad) {
  if (learned_positions) return position + 2;
  return token == pad ? pad : pad + 1 + position;
}

// MinLengthLogitsProcessor: end-of-sequence is banned while the sequence (start token
// included, `length` tokens) is shorter than min_length.
TROCR_HOST_DEVICE bool min_length_bans_eos(int length, int min_length) { return length < min_length; }

// NoRepeatNGramLogitsProcessor, one earlier n-gram at a time: the n-gram of `sequence`
// (`length` tokens) starting at `start` bans its last token when its first n-1 tokens equal
// the sequence's last n-1. Returns the banned token, or -1. Starts run over
// [0, ngram_starts(length, ngram_size)).
TROCR_HOST_DEVICE int ngram_starts(int length, int ngram_size) {
  return ngram_size <= 0 || length + 1 < ngram_size ? 0 : length - ngram_size + 1;
}
TROCR_HOST_DEVICE int ngram_banned_token(const int* sequence, int length, int ngram_size, int start) {
  const int prefix = length - (ngram_size - 1);
  for (int i = 0; i < ngram_size - 1; ++i) {
    if (sequence[start + i] != sequence[prefix + i]) return -1;
  }
  return sequence[start + ngram_size - 1];
}

// HF divides a finished beam's summed log-probability by length ** length_penalty, computed in
// double and rounded to float (the device reads these from a table the host fills with it).
inline float length_penalty_denominator(int length, double length_penalty) {
  return static_cast<float>(std::pow(static_cast<double>(length), length_penalty));
}

// The score a candidate is offered to the finished set with: length-penalised, plus a sentinel
// for each reason HF discards it (the set is full and early_stopping is on, the image can no
// longer improve, the candidate did not end among the top num_beams). The sentinels add in this
// order, in float, as HF's do.
TROCR_HOST_DEVICE float finished_candidate_score(float sum_log_probability, float denominator, bool set_full,
                                                 bool improvement_possible, bool just_finished) {
#if defined(__CUDA_ARCH__)
  float score = __fdiv_rn(sum_log_probability, denominator);
#else
  float score = sum_log_probability / denominator;
#endif
  score += set_full ? kBeamSentinel : 0.0f;
  score += improvement_possible ? 0.0f : kBeamSentinel;
  score += just_finished ? 0.0f : kBeamSentinel;
  return score;
}

// A running beam's score for the next step: a candidate that stopped (eos or max_length) keeps
// its place in the ranking but can no longer expand.
TROCR_HOST_DEVICE float running_candidate_score(float score, bool stops) {
  return score + (stops ? kBeamSentinel : 0.0f);
}

// HF's per-image early-stop heuristic: the best running beam, scored as if it ended at
// `best_length`, still beats the worst finished sequence (or an empty place in the set).
TROCR_HOST_DEVICE bool can_improve(float best_running, float best_denominator, const float* finished_scores,
                                   const bool* finished_done, int beams) {
#if defined(__CUDA_ARCH__)
  const float best_possible = __fdiv_rn(best_running, best_denominator);
#else
  const float best_possible = best_running / best_denominator;
#endif
  float worst_finished = finished_scores[0];
  for (int j = 0; j < beams; ++j) worst_finished = fminf(worst_finished, finished_scores[j]);
  bool beats_some = false;
  for (int j = 0; j < beams; ++j) {
    beats_some = beats_some || best_possible > (finished_done[j] ? worst_finished : kBeamSentinel);
  }
  return beats_some;
}

// The length the best running beam is scored at in that heuristic: HF's early_stopping="never"
// with a positive length penalty assumes it may grow to max_length.
TROCR_HOST_DEVICE int best_possible_length(bool never_stop_early, double length_penalty, int max_length,
                                           int length) {
  return never_stop_early && length_penalty > 0.0 ? max_length - 1 : length;
}

}  // namespace trocr

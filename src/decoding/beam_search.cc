// Beam search exactly as HF transformers 5 runs it (generation/utils.py, _beam_search):
// log-softmax, processors, running score added, the top 2*num_beams continuations; of those,
// the best num_beams not ending in eos keep running and the ones among the top num_beams that
// end are offered to the finished set with the length penalty. Float32 arithmetic and the
// -1e9 sentinels are HF's, so that near-ties resolve the same way. An image whose result can
// no longer change (HF adds -1e9 to all its new candidates) stops costing work.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "cpu/vector_math.h"
#include "decoding/logits_processors.h"
#include "decoding/beam_state.h"

namespace trocr {
namespace {

struct Candidate {
  float score;  // accumulated log-probability
  int beam;
  int token;
};

// Indices of the k largest values, largest first, earlier index first on ties (torch.topk).
// Over per-row lists, "earlier" is beam-major then token order, as in the flattened scores.
// One pass in index order: a value enters only when it beats the k-th kept, so on ties the
// earlier index stays.
template <typename Score>
std::vector<int> top_k(size_t count, int k, Score score) {
  std::vector<int> best;
  std::vector<float> values;
  best.reserve(k + 1);
  values.reserve(k + 1);
  for (size_t i = 0; i < count; ++i) {
    const float value = score(static_cast<int>(i));
    if (static_cast<int>(best.size()) == k && !(value > values.back())) continue;
    const size_t at = std::upper_bound(values.begin(), values.end(), value, std::greater<float>()) - values.begin();
    values.insert(values.begin() + at, value);
    best.insert(best.begin() + at, static_cast<int>(i));
    if (static_cast<int>(best.size()) > k) {
      values.pop_back();
      best.pop_back();
    }
  }
  return best;
}

std::vector<int> extended(const std::vector<int>& sequence, int token) {
  std::vector<int> result(sequence.size() + 1);
  std::copy(sequence.begin(), sequence.end(), result.begin());
  result.back() = token;
  return result;
}

// log_softmax in float32, then the processors, then the beam's running score.
void accumulate_scores(const float* logits, int vocab, const std::vector<int>& sequence,
                       float running_score, const SearchOptions& options, float* out) {
  const float largest = cpu::max_value(logits, vocab);
  const float log_total = static_cast<float>(std::log(cpu::sum_of_exp(logits, vocab, largest)));
  for (int t = 0; t < vocab; ++t) out[t] = (logits[t] - largest) - log_total;
  apply_min_length(static_cast<int>(sequence.size()), options.min_length, options.eos, out);
  apply_no_repeat_ngram(sequence, options.no_repeat_ngram_size, out);
  for (int t = 0; t < vocab; ++t) out[t] += running_score;
}

}  // namespace

BeamState BeamState::start(int beams, int decoder_start) {
  BeamState state;
  state.running.assign(beams, {decoder_start});
  state.running_scores.assign(beams, kBeamSentinel);
  state.running_scores[0] = 0.0f;
  state.finished.resize(beams);
  return state;
}

bool BeamState::all_done() const {
  return std::all_of(finished.begin(), finished.end(), [](const FinishedBeam& f) { return f.done; });
}

BeamStep advance_beams(std::vector<BeamState>& states, const std::vector<int>& active, const float* row_values,
                       const int* row_tokens, int length, const SearchOptions& options) {
  const int beams = options.num_beams, keep = 2 * beams;
  BeamStep result;
  bool every_candidate_stops = true;
  for (size_t a = 0; a < active.size(); ++a) {
    const int s = active[a];
    BeamState& state = states[s];
    // torch.topk over the flattened [beams * vocab] scores: ties go to the lower index.
    const float* values = row_values + a * beams * keep;
    const int* ids = row_tokens + a * beams * keep;
    const std::vector<int> best = top_k(static_cast<size_t>(beams) * keep, keep, [&](int i) { return values[i]; });
    std::vector<Candidate> candidates;
    std::vector<bool> stops;
    for (int index : best) {
      candidates.push_back({values[index], index / keep, ids[index]});
      stops.push_back(ids[index] == options.eos || length + 1 >= options.max_length);
      every_candidate_stops = every_candidate_stops && stops.back();
    }
    // The next running beams: the best continuations that did not stop.
    const std::vector<int> next = top_k(candidates.size(), beams, [&](int c) {
      return running_candidate_score(candidates[c].score, stops[c]);
    });
    // Offer the top num_beams candidates that stopped to the finished set.
    const bool full = state.all_done() && options.early_stopping == EarlyStopping::True;
    const float denominator = length_penalty_denominator(length, options.length_penalty);
    std::vector<FinishedBeam> merged = state.finished;
    for (int c = 0; c < keep; ++c) {
      const bool just_finished = stops[c] && c < beams;
      FinishedBeam entry;
      entry.score = finished_candidate_score(candidates[c].score, denominator, full, state.improvement_possible,
                                             just_finished);
      entry.done = just_finished;
      entry.sum_log_probability = candidates[c].score;
      if (just_finished) entry.ids = extended(state.running[candidates[c].beam], candidates[c].token);
      merged.push_back(std::move(entry));
    }
    const std::vector<int> kept = top_k(merged.size(), beams, [&](int i) { return merged[i].score; });
    std::vector<FinishedBeam> finished;
    for (int i : kept) finished.push_back(std::move(merged[i]));
    state.finished = std::move(finished);

    std::vector<std::vector<int>> running;
    std::vector<float> running_scores;
    for (int c : next) {
      running.push_back(extended(state.running[candidates[c].beam], candidates[c].token));
      running_scores.push_back(running_candidate_score(candidates[c].score, stops[c]));
      result.reorder_slots.push_back(s * beams + static_cast<int>(running.size()) - 1);
      result.reorder_sources.push_back(s * beams + candidates[c].beam);
    }
    state.running = std::move(running);
    state.running_scores = std::move(running_scores);

    // HF's early-stop heuristic for this image, after the length grew by one.
    const int best_length = best_possible_length(options.early_stopping == EarlyStopping::Never,
                                                 options.length_penalty, options.max_length, length);
    std::vector<float> finished_scores(beams);
    const std::unique_ptr<bool[]> finished_done(new bool[beams]);
    for (int j = 0; j < beams; ++j) {
      finished_scores[j] = state.finished[j].score;
      finished_done[j] = state.finished[j].done;
    }
    state.improvement_possible =
        state.improvement_possible &&
        can_improve(state.running_scores[0], length_penalty_denominator(best_length, options.length_penalty),
                    finished_scores.data(), finished_done.get(), beams);
    state.frozen = !state.improvement_possible || (state.all_done() && options.early_stopping == EarlyStopping::True);
  }
  // HF's whole-batch stopping rule, over every image (frozen ones included).
  bool any_improvement = false, every_done = true;
  for (const BeamState& state : states) {
    any_improvement = any_improvement || state.improvement_possible;
    every_done = every_done && state.all_done();
  }
  const bool open_beam = !(every_done && options.early_stopping == EarlyStopping::True);
  result.stop = !(any_improvement && open_beam && !every_candidate_stops);
  return result;
}

std::vector<std::vector<Hypothesis>> beam_search(StepModel& model, int sources,
                                                 const SearchOptions& options) {
  const int beams = options.num_beams;
  const int keep = 2 * beams;
  const int vocab = model.vocab_size();
  std::vector<int> slot_sources;
  for (int s = 0; s < sources; ++s) slot_sources.insert(slot_sources.end(), beams, s);
  model.begin(slot_sources);

  std::vector<BeamState> states(sources, BeamState::start(beams, options.decoder_start));
  std::vector<float> logits;
  for (int length = 1;; ++length) {  // `length`: tokens in every running sequence
    std::vector<int> slots, tokens, active;
    for (int s = 0; s < sources; ++s) {
      if (states[s].frozen) continue;
      active.push_back(s);
      for (int b = 0; b < beams; ++b) {
        slots.push_back(s * beams + b);
        tokens.push_back(states[s].running[b].back());
      }
    }
    if (active.empty()) break;
    // Each row's best `keep` continuations; the best `keep` of an image are among them.
    const size_t rows = slots.size();
    std::vector<float> row_values(rows * keep);
    std::vector<int> row_tokens(rows * keep);
    logits.resize(rows * static_cast<size_t>(vocab));
    model.step(slots, tokens, length - 1, logits.data());
    // Rows are independent: each thread scores its rows over the vocabulary in its own buffer.
#pragma omp parallel
    {
      std::vector<float> accumulated(vocab);
#pragma omp for schedule(static)
      for (size_t r = 0; r < rows; ++r) {
        const BeamState& state = states[active[r / beams]];
        accumulate_scores(logits.data() + r * vocab, vocab, state.running[r % beams],
                          state.running_scores[r % beams], options, accumulated.data());
        const std::vector<int> best = top_k(vocab, keep, [&](int t) { return accumulated[t]; });
        for (int i = 0; i < keep; ++i) {
          row_values[r * keep + i] = accumulated[best[i]];
          row_tokens[r * keep + i] = best[i];
        }
      }
    }
    const BeamStep step = advance_beams(states, active, row_values.data(), row_tokens.data(), length, options);
    model.reorder(step.reorder_slots, step.reorder_sources, length);
    if (step.stop) break;
  }

  std::vector<std::vector<Hypothesis>> results(sources);
  for (int s = 0; s < sources; ++s) {
    for (int r = 0; r < options.num_return_sequences; ++r) {
      const FinishedBeam& f = states[s].finished[r];
      results[s].push_back(beam_hypothesis(f.ids, f.score, f.sum_log_probability));
    }
  }
  return results;
}

}  // namespace trocr

#pragma once
// HF's beam search (generation/utils.py, _beam_search) as state and one step of bookkeeping per
// image. beam_search() drives it over any StepModel; it is also the reference that the CUDA
// engine's beam_merge kernel is tested against, state for state.
#include <vector>

#include "decoding/search.h"

namespace trocr {

struct FinishedBeam {
  std::vector<int> ids;            // empty for a placeholder
  float score = kBeamSentinel;     // length-penalised, as HF's beam_scores
  float sum_log_probability = 0.0f;
  bool done = false;               // HF's is_sent_finished
};

struct BeamState {
  std::vector<std::vector<int>> running;  // num_beams sequences of equal length
  std::vector<float> running_scores;
  std::vector<FinishedBeam> finished;     // num_beams entries, best first
  bool improvement_possible = true;       // HF's is_early_stop_heuristic_unsatisfied
  bool frozen = false;                    // its result can no longer change

  // HF's initial state: every beam holds the start token; only the first may expand.
  static BeamState start(int beams, int decoder_start);
  bool all_done() const;
};

struct BeamStep {
  bool stop = false;  // HF's whole-batch stopping rule says the search is over
  // Beam reordering for StepModel::reorder: slot reorder_slots[i] takes reorder_sources[i]'s cache.
  std::vector<int> reorder_slots, reorder_sources;
};

// One step for the images `active` (not frozen), whose sequences hold `length` tokens: row
// a * beams + b (beam b of active[a]) offers its 2 * num_beams best candidates, values
// (accumulated log-probabilities) and tokens [rows, 2 * num_beams], best first. Extends the
// running beams, offers the ended ones to the finished sets, updates each image's early-stop
// heuristic and frozen flag, and evaluates the stopping rule over every image.
BeamStep advance_beams(std::vector<BeamState>& states, const std::vector<int>& active, const float* values,
                       const int* tokens, int length, const SearchOptions& options);

}  // namespace trocr

#pragma once
// Greedy and beam search over any StepModel, with HF generate()'s semantics.
#include <vector>

#include "decoding/step_model.h"
#include "model/trocr_rules.h"
#include "trocr/config.h"

namespace trocr {

struct SearchOptions {
  int max_length = 21;  // start token included
  int min_length = 0;
  int num_beams = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::False;
  int no_repeat_ngram_size = 0;
  int num_return_sequences = 1;
  int decoder_start = 2;
  int eos = 2;

  static SearchOptions from(const GenerationConfig& config);
};
// Whether two searches decode alike (the server batches only such requests together).
bool operator==(const SearchOptions& a, const SearchOptions& b);

struct Hypothesis {
  std::vector<int> ids;  // start token first; eos last when the sequence ended by itself
  // Beam search: HF's sequences_scores (sum of log-probabilities over length^length_penalty).
  // Greedy: the mean log-probability of the chosen tokens.
  float score = 0.0f;
  // Greedy: the arithmetic mean and the minimum of the chosen tokens' probabilities.
  // Beam: the geometric mean (exp of the mean log-probability) for both.
  float mean_token_probability = 0.0f;
  float min_token_probability = 0.0f;
};

// One list of hypotheses per source, best first (num_return_sequences of them for beams).
using Hypotheses = std::vector<std::vector<Hypothesis>>;

// A search strategy, on any device: HF's greedy or beam search over `sources` inputs whose
// encoder output its model already holds. HostSearch drives any StepModel; the CUDA engine's
// strategies run their loops on the GPU (src/cuda/greedy_search.h, beam_search.h).
class SearchStrategy {
 public:
  virtual ~SearchStrategy() = default;
  virtual Hypotheses search(int sources, const SearchOptions& options) = 0;
};

Hypotheses greedy_search(StepModel& model, int sources, const SearchOptions& options);
Hypotheses beam_search(StepModel& model, int sources, const SearchOptions& options);

// Greedy or beam search (by the options' num_beams) over any StepModel, driven by the host.
class HostSearch : public SearchStrategy {
 public:
  explicit HostSearch(StepModel& model) : model_(model) {}
  Hypotheses search(int sources, const SearchOptions& options) override;

 private:
  StepModel& model_;
};

// A greedy line from its ids (start token first) and the sums over its chosen tokens:
// score = mean log-probability, mean and minimum token probability.
Hypothesis greedy_hypothesis(std::vector<int> ids, double sum_log_probability,
                             double sum_probability, float min_probability);
// A beam-search line from its finished entry: ids (start token first), HF's length-penalised
// score and the sum of its tokens' log-probabilities.
Hypothesis beam_hypothesis(std::vector<int> ids, float score, float sum_log_probability);
// Decoder logits for teacher-forced ids on one fresh slot of source 0, one cached step at a
// time: [ids.size() - 1, vocab].
std::vector<float> teacher_forced_logits(StepModel& model, const std::vector<int>& ids);
// Refuses settings that cannot run (errors name the setting and the limit).
void validate(const SearchOptions& options, int model_max_length);
std::vector<std::vector<Hypothesis>> generate(StepModel& model, int sources,
                                              const SearchOptions& options);

}  // namespace trocr

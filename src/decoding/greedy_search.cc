// Greedy search as HF's _sample without sampling: processors on the raw logits, argmax (the
// first maximum on ties), stop at eos or max_length. Finished sequences leave the batch.
#include <algorithm>
#include <cmath>

#include "cpu/vector_math.h"
#include "decoding/logits_processors.h"
#include "decoding/search.h"

namespace trocr {

std::vector<std::vector<Hypothesis>> greedy_search(StepModel& model, int sources,
                                                   const SearchOptions& options) {
  const int vocab = model.vocab_size();
  std::vector<int> slot_sources(sources);
  for (int s = 0; s < sources; ++s) slot_sources[s] = s;
  model.begin(slot_sources);
  std::vector<Hypothesis> hypotheses(sources);
  std::vector<double> log_probability_sum(sources, 0.0), probability_sum(sources, 0.0);
  std::vector<float> min_probability(sources, 1.0f);
  std::vector<int> active = slot_sources;
  for (auto& hypothesis : hypotheses) hypothesis.ids = {options.decoder_start};
  std::vector<float> logits;
  for (int position = 0; !active.empty() && position + 1 < options.max_length; ++position) {
    std::vector<int> tokens;
    for (int slot : active) tokens.push_back(hypotheses[slot].ids.back());
    logits.resize(active.size() * static_cast<size_t>(vocab));
    model.step(active, tokens, position, logits.data());
    // Rows are independent: each is scored over the vocabulary on its own thread.
    const int64_t rows = static_cast<int64_t>(active.size());
    std::vector<int> chosen(rows);
    std::vector<double> chosen_log_probability(rows);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const Hypothesis& hypothesis = hypotheses[active[i]];
      float* scores = logits.data() + i * vocab;
      apply_min_length(static_cast<int>(hypothesis.ids.size()), options.min_length, options.eos,
                       scores);
      apply_no_repeat_ngram(hypothesis.ids, options.no_repeat_ngram_size, scores);
      const float largest = cpu::max_value(scores, vocab);
      chosen[i] = static_cast<int>(std::find(scores, scores + vocab, largest) - scores);  // the first maximum
      chosen_log_probability[i] = -std::log(cpu::sum_of_exp(scores, vocab, largest));
    }
    std::vector<int> still_active;
    for (size_t i = 0; i < active.size(); ++i) {
      Hypothesis& hypothesis = hypotheses[active[i]];
      const int best = chosen[i];
      const double log_probability = chosen_log_probability[i];
      log_probability_sum[active[i]] += log_probability;
      probability_sum[active[i]] += std::exp(log_probability);
      min_probability[active[i]] =
          std::min(min_probability[active[i]], static_cast<float>(std::exp(log_probability)));
      hypothesis.ids.push_back(best);
      if (best != options.eos) still_active.push_back(active[i]);
    }
    active = std::move(still_active);
  }
  std::vector<std::vector<Hypothesis>> results(sources);
  for (int s = 0; s < sources; ++s) {
    results[s].push_back(greedy_hypothesis(std::move(hypotheses[s].ids), log_probability_sum[s],
                                           probability_sum[s], min_probability[s]));
  }
  return results;
}

}  // namespace trocr

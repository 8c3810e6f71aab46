// Greedy search as HF's _sample without sampling: processors on the raw logits, argmax (the
// first maximum on ties), stop at eos or max_length. Finished sequences leave the batch.
#include <algorithm>
#include <cmath>

#include "cpu/vector_math.h"
#include "decoding/greedy_line.h"
#include "decoding/logits_processors.h"
#include "decoding/search.h"

namespace trocr {

GreedyLine::Choice GreedyLine::choose(const SearchOptions& options, float* scores, int vocab) const {
  apply_min_length(static_cast<int>(ids_.size()), options.min_length, options.eos, scores);
  apply_no_repeat_ngram(ids_, options.no_repeat_ngram_size, scores);
  const float largest = cpu::max_value(scores, vocab);
  Choice choice;
  choice.token = static_cast<int>(std::find(scores, scores + vocab, largest) - scores);  // the first maximum
  choice.log_probability = -std::log(cpu::sum_of_exp(scores, vocab, largest));
  return choice;
}

void GreedyLine::append(const Choice& choice) {
  log_probability_sum_ += choice.log_probability;
  probability_sum_ += std::exp(choice.log_probability);
  min_probability_ = std::min(min_probability_, static_cast<float>(std::exp(choice.log_probability)));
  ids_.push_back(choice.token);
}

bool GreedyLine::finished(const SearchOptions& options) const {
  return (ids_.size() > 1 && ids_.back() == options.eos) || static_cast<int>(ids_.size()) >= options.max_length;
}

void advance_lines(const std::vector<GreedyLine*>& lines, const SearchOptions& options, float* logits, int vocab) {
  const int64_t rows = static_cast<int64_t>(lines.size());
  std::vector<GreedyLine::Choice> chosen(rows);
  // Rows are independent: each is scored over the vocabulary on its own thread.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) chosen[i] = lines[i]->choose(options, logits + i * vocab, vocab);
  for (int64_t i = 0; i < rows; ++i) lines[i]->append(chosen[i]);
}

Hypothesis GreedyLine::take_hypothesis() {
  return greedy_hypothesis(std::move(ids_), log_probability_sum_, probability_sum_, min_probability_);
}

std::vector<std::vector<Hypothesis>> greedy_search(StepModel& model, int sources,
                                                   const SearchOptions& options) {
  const int vocab = model.vocab_size();
  std::vector<int> slot_sources(sources);
  for (int s = 0; s < sources; ++s) slot_sources[s] = s;
  model.begin(slot_sources);
  std::vector<GreedyLine> lines(sources, GreedyLine(options));
  std::vector<int> active;
  for (int s = 0; s < sources; ++s) {
    if (!lines[s].finished(options)) active.push_back(s);
  }
  std::vector<float> logits;
  for (int position = 0; !active.empty(); ++position) {
    std::vector<int> tokens;
    std::vector<GreedyLine*> stepped;
    for (int slot : active) {
      tokens.push_back(lines[slot].ids().back());
      stepped.push_back(&lines[slot]);
    }
    logits.resize(active.size() * static_cast<size_t>(vocab));
    model.step(active, tokens, position, logits.data());
    advance_lines(stepped, options, logits.data(), vocab);
    std::vector<int> still_active;
    for (int slot : active) {
      if (!lines[slot].finished(options)) still_active.push_back(slot);
    }
    active = std::move(still_active);
  }
  std::vector<std::vector<Hypothesis>> results(sources);
  for (int s = 0; s < sources; ++s) results[s].push_back(lines[s].take_hypothesis());
  return results;
}

}  // namespace trocr

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "decoding/search.h"

namespace trocr {

SearchOptions SearchOptions::from(const GenerationConfig& config) {
  SearchOptions options;
  options.max_length = config.resolved_max_length();
  options.min_length = config.resolved_min_length();
  options.num_beams = config.num_beams;
  options.length_penalty = config.length_penalty;
  options.early_stopping = config.early_stopping;
  options.no_repeat_ngram_size = config.no_repeat_ngram_size;
  options.num_return_sequences = config.num_return_sequences;
  options.decoder_start = config.tokens.decoder_start;
  options.eos = config.tokens.eos;
  return options;
}

Hypothesis greedy_hypothesis(std::vector<int> ids, double sum_log_probability,
                             double sum_probability, float min_probability) {
  Hypothesis hypothesis;
  const double steps = static_cast<double>(ids.size() - 1);
  hypothesis.ids = std::move(ids);
  hypothesis.score = static_cast<float>(sum_log_probability / steps);
  hypothesis.mean_token_probability = static_cast<float>(sum_probability / steps);
  hypothesis.min_token_probability = min_probability;
  return hypothesis;
}

Hypothesis beam_hypothesis(std::vector<int> ids, float score, float sum_log_probability) {
  Hypothesis hypothesis;
  const double steps = std::max<size_t>(1, ids.size()) - 1.0;
  const float geometric = static_cast<float>(std::exp(sum_log_probability / std::max(1.0, steps)));
  hypothesis.ids = std::move(ids);
  hypothesis.score = score;
  hypothesis.mean_token_probability = hypothesis.min_token_probability = geometric;
  return hypothesis;
}

std::vector<float> teacher_forced_logits(StepModel& model, const std::vector<int>& ids) {
  model.begin({0});
  const size_t vocab = model.vocab_size();
  std::vector<float> logits(ids.empty() ? 0 : (ids.size() - 1) * vocab);
  for (size_t position = 0; position + 1 < ids.size(); ++position) {
    model.step({0}, {ids[position]}, static_cast<int>(position), logits.data() + position * vocab);
  }
  return logits;
}

bool operator==(const SearchOptions& a, const SearchOptions& b) {
  return a.max_length == b.max_length && a.min_length == b.min_length && a.num_beams == b.num_beams &&
         a.length_penalty == b.length_penalty && a.early_stopping == b.early_stopping &&
         a.no_repeat_ngram_size == b.no_repeat_ngram_size && a.num_return_sequences == b.num_return_sequences &&
         a.decoder_start == b.decoder_start && a.eos == b.eos;
}

void validate(const SearchOptions& options, int model_max_length) {
  if (options.max_length < 2) fail("max_length {} leaves no room to generate", options.max_length);
  if (options.max_length > model_max_length) {
    fail("max_length {} is more than the model's {} positions", options.max_length,
         model_max_length);
  }
  if (options.num_beams < 1) fail("num_beams must be at least 1");
  if (options.num_return_sequences > options.num_beams) {
    fail("num_return_sequences ({}) is larger than num_beams ({})", options.num_return_sequences,
         options.num_beams);
  }
}

std::vector<std::vector<Hypothesis>> generate(StepModel& model, int sources,
                                              const SearchOptions& options) {
  validate(options, model.max_length());
  if (options.num_beams == 1) return greedy_search(model, sources, options);
  return beam_search(model, sources, options);
}

Hypotheses HostSearch::search(int sources, const SearchOptions& options) {
  return generate(model_, sources, options);
}

}  // namespace trocr

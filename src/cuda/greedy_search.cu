#include "cuda/greedy_search.h"

#include <algorithm>

#include "common/check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/search_rows.h"

namespace trocr::cuda {

// Everything a captured greedy step depends on (step_graphs.h).
template <typename T>
struct DeviceGreedySearch<T>::Spec {
  DeviceGreedySearch<T>* search;
  StepShape shape;
  int max_length, min_length, no_repeat_ngram_size, eos, pad;
  int scratch_line;  // lines in flight: the sequence that padding rows decode (-1: none)
  int unused = 0;    // with the shape's five ints, an even count: no padding
};

template <typename T>
DeviceGreedySearch<T>::DeviceGreedySearch(DecoderStep<T>& step, EncoderStates<T>& states, StepGraphs& graphs,
                                          const ModelConfig& config, int max_images, int max_length)
    : step_(step), states_(states), graphs_(graphs), config_(config), max_images_(max_images),
      max_length_(max_length), history_(size_t(max_images) * max_length), finished_(max_images),
      sum_log_probability_(max_images), sum_probability_(max_images), min_probability_(max_images) {}

template <typename T>
void DeviceGreedySearch<T>::enqueue(const Spec& spec) {
  DeviceGreedySearch<T>& self = *spec.search;
  DecoderStep<T>& step = self.step_;
  cudaStream_t stream = step.stream();
  // Padding rows all decode the scratch line: it starts every step at position 0 (their writes
  // race each other there, and nothing reads the scratch line's results).
  if (spec.scratch_line >= 0) {
    TROCR_CUDA_CHECK(cudaMemsetAsync(step.position() + spec.scratch_line, 0, sizeof(int), stream));
  }
  const StepPositions positions = step.positions(spec.shape);
  const GreedyParams params{spec.shape.rows, step.row_images(), self.config_.decoder.vocab_size, spec.max_length,
                            spec.min_length, spec.eos, spec.pad, spec.no_repeat_ngram_size, positions,
                            self.history_.data(), self.finished_.data(), self.sum_log_probability_.data(),
                            self.sum_probability_.data(), self.min_probability_.data()};
  gather_last_tokens(self.history_.data(), step.row_images(), spec.shape.rows, spec.max_length, positions,
                     step.tokens(), stream);
  step.forward(spec.shape);
  greedy_select(params, step.logits(), stream);
  advance_position(positions, spec.shape.rows, stream);
}

template <typename T>
typename DeviceGreedySearch<T>::Spec DeviceGreedySearch<T>::spec_for(const StepShape& shape,
                                                                    const SearchOptions& options, int scratch_line) {
  // The sequences' row stride is the plan's; a search ends its rows at options.max_length.
  return Spec{this, shape, max_length_, options.min_length, options.no_repeat_ngram_size, options.eos,
              config_.tokens.pad, scratch_line};
}

template <typename T>
Hypotheses DeviceGreedySearch<T>::search(int images, const SearchOptions& options) {
  if (images > max_images_ || options.max_length > max_length_) {
    fail("CUDA greedy search: {} images of {} tokens, planned for {} of {}", images, options.max_length, max_images_,
         max_length_);
  }
  const int max_length = options.max_length;
  cudaStream_t stream = step_.stream();
  const CrossAttentionKernel cross = step_.choose_cross_attention(images, /*greedy=*/true);
  states_.prepare(images, cross != CrossAttentionKernel::OverEncoderStates);
  // Row i decodes image i in cache slot i; when a quarter of the rows have finished, the batch
  // shrinks to the rest (a new graph, for the new row count). The attention over the encoder
  // states reads every image in its row, so it keeps the full batch.
  std::vector<int> active(images);
  for (int i = 0; i < images; ++i) active[i] = i;
  start_lines(active, options);
  Spec spec = spec_for(step_.set_rows(active, active, max_length, cross, RowPositions::PerImage), options);
  std::vector<int> done(images);
  constexpr int kCheckEvery = 4;
  for (int position = 0; position + 1 < max_length; ++position) {
    graphs_.replay(spec, &DeviceGreedySearch<T>::enqueue);
    if ((position + 1) % kCheckEvery != 0) continue;
    finished_.copy_to(done, stream);
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<int> unfinished = unfinished_images(active, done.data());
    if (unfinished.empty()) break;
    if (cross == CrossAttentionKernel::OverEncoderStates || !worth_shrinking(unfinished.size(), active.size())) continue;
    active = std::move(unfinished);
    spec.shape = step_.set_rows(active, active, max_length, cross, RowPositions::PerImage);
  }
  copy_lines(0);
  const LineStates states = copied_lines(0);
  Hypotheses results(images);
  for (int i = 0; i < images; ++i) results[i].push_back(line_hypothesis(states, i, options));
  return results;
}

template <typename T>
void DeviceGreedySearch<T>::start_lines(const std::vector<int>& lines, const SearchOptions& options) {
  if (lines.empty()) return;
  if (options.max_length > max_length_ || *std::max_element(lines.begin(), lines.end()) >= max_images_) {
    fail("CUDA greedy lines: lines up to {} of {} tokens, planned for {} of {}",
         *std::max_element(lines.begin(), lines.end()), options.max_length, max_images_, max_length_);
  }
  cudaStream_t stream = step_.stream();
  started_lines_.assign(lines, stream);
  const StartLinesParams params{started_lines_.data(), static_cast<int>(lines.size()), max_length_,
                                options.decoder_start, config_.tokens.pad, history_.data(), finished_.data(),
                                sum_log_probability_.data(), sum_probability_.data(), min_probability_.data(),
                                step_.position()};
  start_greedy_lines(params, stream);
}

template <typename T>
void DeviceGreedySearch<T>::step_lines(const StepShape& shape, const SearchOptions& options, int scratch_line) {
  graphs_.replay(spec_for(shape, options, scratch_line), &DeviceGreedySearch<T>::enqueue);
}

template <typename T>
void DeviceGreedySearch<T>::copy_lines(int buffer) {
  if (!readback_) {
    using Array = LineReadback::Array;
    readback_ = std::make_unique<LineReadback>(std::vector<Array>{
        Array::of(history_), Array::of(finished_), Array::of(sum_log_probability_), Array::of(sum_probability_),
        Array::of(min_probability_)});
  }
  readback_->copy(buffer, step_.stream());
}

template <typename T>
typename DeviceGreedySearch<T>::LineStates DeviceGreedySearch<T>::copied_lines(int buffer) {
  return {readback_->copied<int>(buffer, 0), readback_->copied<int>(buffer, 1), readback_->copied<float>(buffer, 2),
          readback_->copied<float>(buffer, 3), readback_->copied<float>(buffer, 4)};
}

template <typename T>
Hypothesis DeviceGreedySearch<T>::line_hypothesis(const LineStates& states, int line,
                                                  const SearchOptions& options) const {
  std::vector<int> ids = {options.decoder_start};
  for (int t = 1; t < options.max_length; ++t) {
    ids.push_back(states.history[size_t(line) * max_length_ + t]);
    if (ids.back() == options.eos) break;
  }
  return greedy_hypothesis(std::move(ids), states.sum_log_probability[line], states.sum_probability[line],
                           states.min_probability[line]);
}

template class DeviceGreedySearch<float>;
template class DeviceGreedySearch<__half>;
template class DeviceGreedySearch<__nv_bfloat16>;

}  // namespace trocr::cuda

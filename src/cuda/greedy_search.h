#pragma once
// Greedy search on the GPU: a decode step and HF's token choice as one replayed CUDA graph, each
// row at its own sequence's position, only the final ids copied back. It owns its state (the
// sequences and their probability sums), sized once for the plan. A whole batch (search) shrinks
// to its unfinished rows as they end; lines in flight (start_lines, step_lines) join and leave
// between any two steps, each in its own slot.
#include <memory>

#include "cuda/decoder_step.h"
#include "cuda/device_buffer.h"
#include "cuda/line_readback.h"
#include "cuda/step_graphs.h"
#include "decoding/search.h"

namespace trocr::cuda {

template <typename T>
class DeviceGreedySearch : public SearchStrategy {
 public:
  DeviceGreedySearch(DecoderStep<T>& step, EncoderStates<T>& states, StepGraphs& graphs, const ModelConfig& config,
                     int max_images, int max_length);
  // After the encoder has written `images` outputs into the EncoderStates.
  Hypotheses search(int images, const SearchOptions& options) override;

  // Lines in flight: sequence l decodes image slot l in cache slot l (the caller has written its
  // cross-attention K/V there). start_lines sets the sequences of newly admitted lines to the
  // start token at position 0 (start_scratch_line: a line whose results nobody reads); step_lines
  // runs one step of shape's rows (set_rows of the active lines, RowPositions::PerImage; any other
  // rows are padding rows of scratch_line); copy_lines(b) enqueues the copy of every sequence's
  // state, as the steps enqueued so far leave it, into host buffer b (0 or 1), and copied_lines(b)
  // waits for it (valid until b is copied again: the next step may run meanwhile);
  // line_hypothesis makes line l's answer from it.
  void start_lines(const std::vector<int>& lines, const SearchOptions& options);
  void start_scratch_line(int line, const SearchOptions& options) { start_lines({line}, options); }
  void step_lines(const StepShape& shape, const SearchOptions& options, int scratch_line = -1);
  struct LineStates {
    const int* history;
    const int* finished;
    const float* sum_log_probability;
    const float* sum_probability;
    const float* min_probability;
  };
  void copy_lines(int buffer);
  LineStates copied_lines(int buffer);
  Hypothesis line_hypothesis(const LineStates& states, int line, const SearchOptions& options) const;

 private:
  struct Spec;
  static void enqueue(const Spec& spec);
  Spec spec_for(const StepShape& shape, const SearchOptions& options, int scratch_line = -1);

  DecoderStep<T>& step_;
  EncoderStates<T>& states_;
  StepGraphs& graphs_;
  const ModelConfig& config_;
  int max_images_, max_length_;
  DeviceBuffer<int> history_, finished_, started_lines_;
  DeviceBuffer<float> sum_log_probability_, sum_probability_, min_probability_;
  // history_, finished_ and the three sums, in that order (made at the first copy).
  std::unique_ptr<LineReadback> readback_;
};

}  // namespace trocr::cuda

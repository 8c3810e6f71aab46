#pragma once
// Greedy search on the GPU: a decode step and HF's token choice as one replayed CUDA graph, the
// batch shrinking to the unfinished rows, only the final ids copied back. It owns its state
// (the sequences and their probability sums), sized once for the plan.
#include "cuda/decoder_step.h"
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

 private:
  struct Spec;
  static void enqueue(const Spec& spec);

  DecoderStep<T>& step_;
  EncoderStates<T>& states_;
  StepGraphs& graphs_;
  const ModelConfig& config_;
  int max_images_, max_length_;
  DeviceBuffer<int> history_, finished_;
  DeviceBuffer<float> sum_log_probability_, sum_probability_, min_probability_;
};

}  // namespace trocr::cuda

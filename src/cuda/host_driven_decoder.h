#pragma once
// The GPU decoder step as a StepModel, for the searches the host drives: beam search with more
// than kMaxBeams beams (decoding/beam_search.cc, HF's bookkeeping on the host) and teacher-forced
// logits. Each step uploads its rows, runs the step and copies the logits back.
#include <vector>

#include "cuda/decoder_step.h"
#include "cuda/kv_caches.h"
#include "decoding/step_model.h"

namespace trocr::cuda {

template <typename T>
class HostDrivenDecoder : public StepModel {
 public:
  HostDrivenDecoder(DecoderStep<T>& step, EncoderStates<T>& states, KvCaches<T>& caches, const ModelConfig& config);

  int vocab_size() const override { return config_.decoder.vocab_size; }
  int max_length() const override { return caches_.positions(); }
  // Also computes the cross-attention K/V of the images the slots read (the encoder has
  // written them).
  void begin(const std::vector<int>& slot_sources) override;
  void step(const std::vector<int>& slots, const std::vector<int>& tokens, int position, float* logits) override;
  void reorder(const std::vector<int>& slots, const std::vector<int>& sources, int position) override;

 private:
  DecoderStep<T>& step_;
  EncoderStates<T>& states_;
  KvCaches<T>& caches_;
  const ModelConfig& config_;
  std::vector<int> slot_sources_;
  DeviceBuffer<int> parents_;
};

}  // namespace trocr::cuda

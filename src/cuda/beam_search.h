#pragma once
// Beam search on the GPU, for up to kMaxBeams beams: a step (the decoder, each row's top-k,
// HF's bookkeeping in beam_merge, the caches following their beams) is one replayed CUDA graph.
// The host only reads the stop and frozen flags one step behind, so the GPU never waits for it,
// shrinks the batch to the images still searching, and copies the finished sequences back at
// the end. It owns the search's state, sized once for the plan.
#include "cuda/decoder_step.h"
#include "cuda/kv_caches.h"
#include "cuda/step_graphs.h"
#include "decoding/search.h"

namespace trocr::cuda {

template <typename T>
class DeviceBeamSearch : public SearchStrategy {
 public:
  DeviceBeamSearch(DecoderStep<T>& step, EncoderStates<T>& states, KvCaches<T>& caches, StepGraphs& graphs,
                   const ModelConfig& config, int max_images, int max_beams, int max_length);
  ~DeviceBeamSearch() override;
  DeviceBeamSearch(const DeviceBeamSearch&) = delete;
  DeviceBeamSearch& operator=(const DeviceBeamSearch&) = delete;
  // After the encoder has written `images` outputs into the EncoderStates. num_beams: 2 to
  // kMaxBeams (choose_beam_bookkeeping says when).
  Hypotheses search(int images, const SearchOptions& options) override;

 private:
  struct Spec;
  static void enqueue(const Spec& spec);

  DecoderStep<T>& step_;
  EncoderStates<T>& states_;
  KvCaches<T>& caches_;
  StepGraphs& graphs_;
  const ModelConfig& config_;
  int max_images_, max_beams_, max_length_;
  // BeamMergeParams says what each holds.
  DeviceBuffer<int> history_, history_scratch_, finished_ids_, finished_ids_scratch_, finished_lengths_,
      finished_done_, improvement_possible_, flags_, parents_, candidate_tokens_;
  DeviceBuffer<float> running_, finished_scores_, finished_sums_, length_denominators_, candidate_values_;
  // The last two steps' flags, as the host reads them, and the events that mark those steps'
  // ends: made once with the plan, not per search (cudaMallocHost and cudaFreeHost are slow
  // calls, and the release waits for the device).
  PinnedBuffer<int> seen_flags_;
  cudaEvent_t step_done_[2] = {};
};

}  // namespace trocr::cuda

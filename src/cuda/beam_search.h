#pragma once
// Beam search on the GPU, for up to kMaxBeams beams: a step (the decoder, each row's top-k,
// HF's bookkeeping in beam_merge, the caches following their beams) is one replayed CUDA graph.
// The host only reads the stop and frozen flags one step behind, so the GPU never waits for it,
// shrinks the batch to the images still searching, and copies the finished sequences back at
// the end. It owns the search's state, sized once for the plan. Lines in flight (start_lines,
// step_lines) join and leave between any two steps, each image in its own slots, and stop on
// their own.
#include <memory>

#include "cuda/decoder_step.h"
#include "cuda/kv_caches.h"
#include "cuda/line_readback.h"
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

  // Lines in flight (line_batch.h), as DeviceGreedySearch's: line l's beams decode cache slots
  // l * beams ... with image slot l's cross-attention K/V (the caller has written it there).
  // start_lines gives newly admitted lines HF's initial state at position 0; start_scratch_line
  // the same, frozen, for a line whose padding rows run and change nothing. step_lines runs one
  // step of shape's rows (set_rows of the lines' beams, image-major, RowPositions::PerImage; a
  // padding image's rows may follow any line's). copy_lines and copied_lines bring every line's
  // frozen flag and best finished hypothesis to the host, as DeviceGreedySearch's do: a frozen
  // line has ended, and line_hypothesis gives its answer.
  void start_lines(const std::vector<int>& lines, const SearchOptions& options);
  void start_scratch_line(int line, const SearchOptions& options);
  void step_lines(const StepShape& shape, const SearchOptions& options, int scratch_line = -1);
  struct LineStates {
    const int* finished;  // by line: frozen
    const int* ids;       // the finished sets, as finished_ids_
    const int* lengths;
    const float* scores;
    const float* sums;
  };
  void copy_lines(int buffer);
  LineStates copied_lines(int buffer);
  Hypothesis line_hypothesis(const LineStates& states, int line, const SearchOptions& options) const;

 private:
  struct Spec;
  static void enqueue(const Spec& spec);
  Spec spec_for(const StepShape& shape, int images, const SearchOptions& options, bool in_flight, int scratch_line);
  void start(const std::vector<int>& lines, const SearchOptions& options, bool frozen);
  // length_denominators_ for every length the plan allows.
  void upload_length_denominators(double length_penalty);

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
  DeviceBuffer<int> started_lines_;
  // flags_, finished_ids_, and the finished sets' lengths, scores and sums (made at the first copy).
  std::unique_ptr<LineReadback> readback_;
};

}  // namespace trocr::cuda

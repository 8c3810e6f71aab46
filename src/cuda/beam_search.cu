#include "cuda/beam_search.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/search_rows.h"

namespace trocr::cuda {
// Everything a captured beam step depends on (step_graphs.h). The length penalty travels as
// its bits: specs hold integers only.
template <typename T>
struct DeviceBeamSearch<T>::Spec {
  DeviceBeamSearch<T>* search;
  int64_t length_penalty_bits;
  StepShape shape;
  int images, beams, max_length, min_length, no_repeat_ngram_size, eos, early_stopping, never_stop_early;
  int in_flight;     // lines in flight: each image stops on its own
  int scratch_line;  // lines in flight: the image that padding rows decode (-1: none)
  int unused = 0;    // with the shape's five ints, an even count: no padding
};

template <typename T>
DeviceBeamSearch<T>::DeviceBeamSearch(DecoderStep<T>& step, EncoderStates<T>& states, KvCaches<T>& caches,
                                      StepGraphs& graphs, const ModelConfig& config, int max_images, int max_beams,
                                      int max_length)
    : step_(step), states_(states), caches_(caches), graphs_(graphs), config_(config), max_images_(max_images),
      max_beams_(max_beams), max_length_(max_length), seen_flags_(2 * (1 + size_t(max_images))) {
  const size_t slots = size_t(max_images) * max_beams, sequences = slots * max_length;
  for (auto* buffer : {&history_, &history_scratch_, &finished_ids_, &finished_ids_scratch_}) buffer->resize(sequences);
  for (auto* buffer : {&finished_lengths_, &finished_done_, &parents_}) buffer->resize(slots);
  for (auto* buffer : {&running_, &finished_scores_, &finished_sums_}) buffer->resize(slots);
  improvement_possible_.resize(max_images);
  flags_.resize(1 + size_t(max_images));
  length_denominators_.resize(max_length + 1);
  candidate_values_.resize(slots * 2 * max_beams);
  candidate_tokens_.resize(slots * 2 * max_beams);
  for (auto& event : step_done_) TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
}

template <typename T>
DeviceBeamSearch<T>::~DeviceBeamSearch() {
  for (auto& event : step_done_) cudaEventDestroy(event);
}

template <typename T>
void DeviceBeamSearch<T>::enqueue(const Spec& spec) {
  DeviceBeamSearch<T>& self = *spec.search;
  DecoderStep<T>& step = self.step_;
  cudaStream_t stream = step.stream();
  const int rows = spec.shape.rows, keep = 2 * spec.beams;
  // The scratch line's padding rows start every step at position 0 (they all advance it).
  if (spec.scratch_line >= 0) {
    TROCR_CUDA_CHECK(cudaMemsetAsync(step.position() + spec.scratch_line, 0, sizeof(int), stream));
  }
  const StepPositions positions = step.positions(spec.shape);
  gather_last_tokens(self.history_.data(), step.row_slots(), rows, spec.max_length, positions, step.tokens(), stream);
  step.forward(spec.shape);
  BeamTopKParams top_k{rows, self.config_.decoder.vocab_size, keep, self.running_.data(),
                       self.candidate_values_.data(), self.candidate_tokens_.data()};
  top_k.row_slots = step.row_slots();
  top_k.history = self.history_.data();
  top_k.position = positions;
  top_k.max_length = spec.max_length;
  top_k.min_length = spec.min_length;
  top_k.eos = spec.eos;
  top_k.no_repeat_ngram_size = spec.no_repeat_ngram_size;
  beam_top_k(top_k, step.logits(), stream);
  double length_penalty;
  std::memcpy(&length_penalty, &spec.length_penalty_bits, sizeof(length_penalty));
  const BeamMergeParams merge{rows / spec.beams, step.row_images(), spec.images, spec.beams,
                              self.candidate_values_.data(), self.candidate_tokens_.data(), positions,
                              spec.max_length, spec.eos, spec.early_stopping != 0, spec.never_stop_early != 0,
                              length_penalty, self.length_denominators_.data(), self.history_.data(),
                              self.history_scratch_.data(), self.running_.data(), self.parents_.data(),
                              self.finished_ids_.data(), self.finished_ids_scratch_.data(),
                              self.finished_lengths_.data(), self.finished_scores_.data(), self.finished_sums_.data(),
                              self.finished_done_.data(), self.improvement_possible_.data(), self.flags_.data(),
                              /*whole_batch=*/spec.in_flight == 0};
  beam_merge(merge, stream);
  self.caches_.permute({spec.beams, self.parents_.data(), step.row_images(), rows / spec.beams, positions, 0,
                        spec.shape.max_keys, spec.in_flight != 0 ? nullptr : self.flags_.data()},
                       stream);
  advance_position(positions, rows, stream, spec.beams);
}

template <typename T>
typename DeviceBeamSearch<T>::Spec DeviceBeamSearch<T>::spec_for(const StepShape& shape, int images,
                                                                const SearchOptions& options, bool in_flight,
                                                                int scratch_line) {
  Spec spec{this, 0, shape, images, options.num_beams, options.max_length, options.min_length,
            options.no_repeat_ngram_size, options.eos, options.early_stopping == EarlyStopping::True,
            options.early_stopping == EarlyStopping::Never, in_flight, scratch_line};
  std::memcpy(&spec.length_penalty_bits, &options.length_penalty, sizeof(options.length_penalty));
  return spec;
}

template <typename T>
Hypotheses DeviceBeamSearch<T>::search(int images, const SearchOptions& options) {
  const int beams = options.num_beams, slots = images * beams, max_length = options.max_length;
  if (beams < 2 || beams > std::min(kMaxBeams, max_beams_) || images > max_images_ || max_length > max_length_) {
    fail("CUDA beam search: {} images, {} beams of {} tokens; planned for {} images, 2 to {} beams of {}", images,
         beams, max_length, max_images_, std::min(kMaxBeams, max_beams_), max_length_);
  }
  cudaStream_t stream = step_.stream();
  states_.prepare(images, /*key_values=*/true);
  // HF's initial state, as lines in flight get it (image 0's position is the batch's), and the
  // whole batch's stop flag down. Rows are the beams of the images still searching, image-major.
  std::vector<int> active(images);
  std::iota(active.begin(), active.end(), 0);
  start(active, options, /*frozen=*/false);
  TROCR_CUDA_CHECK(cudaMemsetAsync(flags_.data(), 0, sizeof(int), stream));
  const CrossAttentionKernel cross = step_.choose_cross_attention(slots, /*greedy=*/false);
  const auto rows_of = [&] {
    std::vector<int> row_slots, row_images;
    for (int image : active) {
      for (int b = 0; b < beams; ++b) row_slots.push_back(image * beams + b), row_images.push_back(image);
    }
    return step_.set_rows(row_slots, row_images, max_length, cross);
  };
  Spec spec = spec_for(rows_of(), images, options, /*in_flight=*/false, /*scratch_line=*/-1);

  // Each step's flags land in pinned memory; the host reads step n-1's while step n runs.
  const int flag_count = 1 + images;
  int* const flags = seen_flags_.data();
  const auto step_done = [&](int step) { return step_done_[step % 2]; };
  for (int step = 0; step + 1 < max_length; ++step) {
    graphs_.replay(spec, &DeviceBeamSearch<T>::enqueue);
    TROCR_CUDA_CHECK(cudaMemcpyAsync(flags + (step % 2) * flag_count, flags_.data(), flag_count * sizeof(int),
                                     cudaMemcpyDeviceToHost, stream));
    TROCR_CUDA_CHECK(cudaEventRecord(step_done(step), stream));
    if (step == 0) continue;
    TROCR_CUDA_CHECK(cudaEventSynchronize(step_done(step - 1)));
    const int* seen = flags + ((step - 1) % 2) * flag_count;
    if (seen[0] != 0) break;  // the step already queued changes nothing
    std::vector<int> searching = unfinished_images(active, seen + 1);  // not frozen
    if (searching.empty()) break;
    if (!worth_shrinking(searching.size(), active.size())) continue;
    active = std::move(searching);
    spec.shape = rows_of();
  }

  std::vector<int> ids(size_t(slots) * max_length), lengths(slots);
  std::vector<float> scores(slots), sums(slots);
  finished_ids_.copy_to(ids, stream);
  finished_lengths_.copy_to(lengths, stream);
  finished_scores_.copy_to(scores, stream);
  finished_sums_.copy_to(sums, stream);
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
  Hypotheses results(images);
  for (int image = 0; image < images; ++image) {
    for (int r = 0; r < options.num_return_sequences; ++r) {
      const int slot = image * beams + r;
      const auto first = ids.begin() + size_t(slot) * max_length;
      results[image].push_back(beam_hypothesis({first, first + lengths[slot]}, scores[slot], sums[slot]));
    }
  }
  return results;
}

template <typename T>
void DeviceBeamSearch<T>::upload_length_denominators(double length_penalty) {
  std::vector<float> denominators(max_length_ + 1);
  for (int length = 0; length <= max_length_; ++length) {
    denominators[length] = length_penalty_denominator(length, length_penalty);
  }
  length_denominators_.assign(denominators, step_.stream());
}

template <typename T>
void DeviceBeamSearch<T>::start_lines(const std::vector<int>& lines, const SearchOptions& options) {
  start(lines, options, /*frozen=*/false);
}

template <typename T>
void DeviceBeamSearch<T>::start_scratch_line(int line, const SearchOptions& options) {
  start({line}, options, /*frozen=*/true);
}

template <typename T>
void DeviceBeamSearch<T>::start(const std::vector<int>& lines, const SearchOptions& options, bool frozen) {
  if (lines.empty()) return;
  const int last = *std::max_element(lines.begin(), lines.end());
  if (options.num_beams < 2 || options.num_beams > std::min(kMaxBeams, max_beams_) || last >= max_images_ ||
      options.max_length > max_length_) {
    fail("CUDA beam lines: lines up to {} of {} beams of {} tokens; planned for {} images, 2 to {} beams of {}", last,
         options.num_beams, options.max_length, max_images_, std::min(kMaxBeams, max_beams_), max_length_);
  }
  cudaStream_t stream = step_.stream();
  upload_length_denominators(options.length_penalty);
  started_lines_.assign(lines, stream);
  const StartBeamLinesParams params{started_lines_.data(),       static_cast<int>(lines.size()),
                                    options.num_beams,           options.max_length,
                                    options.decoder_start,       config_.tokens.pad,
                                    frozen,                      history_.data(),
                                    running_.data(),             finished_lengths_.data(),
                                    finished_done_.data(),       finished_scores_.data(),
                                    finished_sums_.data(),       improvement_possible_.data(),
                                    flags_.data(),               step_.position()};
  start_beam_lines(params, stream);
}

template <typename T>
void DeviceBeamSearch<T>::step_lines(const StepShape& shape, const SearchOptions& options, int scratch_line) {
  graphs_.replay(spec_for(shape, max_images_, options, /*in_flight=*/true, scratch_line), &DeviceBeamSearch<T>::enqueue);
}

template <typename T>
void DeviceBeamSearch<T>::copy_lines(int buffer) {
  if (!readback_) {
    using Array = LineReadback::Array;
    readback_ = std::make_unique<LineReadback>(std::vector<Array>{
        Array::of(flags_), Array::of(finished_ids_), Array::of(finished_lengths_), Array::of(finished_scores_),
        Array::of(finished_sums_)});
  }
  readback_->copy(buffer, step_.stream());
}

template <typename T>
typename DeviceBeamSearch<T>::LineStates DeviceBeamSearch<T>::copied_lines(int buffer) {
  return {readback_->copied<int>(buffer, 0) + 1, readback_->copied<int>(buffer, 1), readback_->copied<int>(buffer, 2),
          readback_->copied<float>(buffer, 3), readback_->copied<float>(buffer, 4)};
}

template <typename T>
Hypothesis DeviceBeamSearch<T>::line_hypothesis(const LineStates& states, int line,
                                                const SearchOptions& options) const {
  const int slot = line * options.num_beams;  // the finished set is kept best first
  const int* first = states.ids + size_t(slot) * options.max_length;
  return beam_hypothesis({first, first + states.lengths[slot]}, states.scores[slot], states.sums[slot]);
}

template class DeviceBeamSearch<float>;
template class DeviceBeamSearch<__half>;
template class DeviceBeamSearch<__nv_bfloat16>;

}  // namespace trocr::cuda

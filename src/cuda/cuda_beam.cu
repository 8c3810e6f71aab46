// CudaModel's device-side beam search. A step (the decoder, each row's top-k, HF's bookkeeping
// in beam_merge, the caches following their beams) is one replayed CUDA graph. The host only
// reads the stop and frozen flags one step behind, so the GPU never waits for it, shrinks the
// batch to the images still searching, and copies the finished sequences back at the end.
#include <cmath>
#include <numeric>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

// Two events that mark the end of the last two steps.
struct StepEvents {
  cudaEvent_t events[2] = {};
  StepEvents() {
    for (auto& event : events) TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  }
  ~StepEvents() {
    for (auto& event : events) cudaEventDestroy(event);
  }
  cudaEvent_t operator[](int step) const { return events[step % 2]; }
};

}  // namespace

template <typename T>
bool CudaModel<T>::beam_search_fits(const SearchOptions& options) const {
  return options.num_beams >= 2 && options.num_beams <= kMaxBeams && 2 * options.num_beams <= vocab_size();
}

template <typename T>
std::vector<std::vector<Hypothesis>> CudaModel<T>::beam_search(int images, const SearchOptions& options, int pad) {
  if (!beam_search_fits(options)) {
    fail("CUDA beam search: {} beams; the device-side search takes 2 to {} (and twice as many tokens)",
         options.num_beams, kMaxBeams);
  }
  if (!cross_kv_ready_) fail("CUDA beam search needs the cross-attention K/V (set_encoder_output without greedy_only)");
  const int beams = options.num_beams, keep = 2 * beams, slots = images * beams;
  const int max_length = options.max_length;
  std::vector<int> slot_images(slots);
  for (int slot = 0; slot < slots; ++slot) slot_images[slot] = slot / beams;
  begin(slot_images);

  // HF's initial state: every beam holds the start token; only the first may expand.
  std::vector<int> history(size_t(slots) * max_length, pad);
  std::vector<float> running(slots, kBeamSentinel);
  for (int slot = 0; slot < slots; ++slot) history[size_t(slot) * max_length] = options.decoder_start;
  for (int image = 0; image < images; ++image) running[image * beams] = 0.0f;
  // HF divides by length ** length_penalty in double and rounds to float: done here, once.
  std::vector<float> denominators(max_length + 1);
  for (int length = 0; length <= max_length; ++length) {
    denominators[length] = static_cast<float>(std::pow(static_cast<double>(length), options.length_penalty));
  }
  beam_history_.assign(history, stream_);
  beam_history_scratch_.grow(history.size());
  beam_running_.assign(running, stream_);
  finished_ids_.grow(history.size());
  finished_ids_scratch_.grow(history.size());
  finished_lengths_.assign(std::vector<int>(slots, 0), stream_);
  finished_done_.assign(std::vector<int>(slots, 0), stream_);
  finished_scores_.assign(std::vector<float>(slots, kBeamSentinel), stream_);
  finished_sums_.assign(std::vector<float>(slots, 0.0f), stream_);
  improvement_possible_.assign(std::vector<int>(images, 1), stream_);
  beam_flags_.assign(std::vector<int>(1 + images, 0), stream_);
  length_denominators_.assign(denominators, stream_);
  cache_parents_.grow(slots);
  beam_values_.grow(size_t(slots) * keep);
  beam_tokens_.grow(size_t(slots) * keep);
  position_.assign({0}, stream_);

  // Rows are the beams of the images still searching, image-major.
  std::vector<int> active(images);
  std::iota(active.begin(), active.end(), 0);
  int rows = 0;
  const auto use_rows = [&] {
    std::vector<int> row_slots, row_images;
    for (int image : active) {
      for (int b = 0; b < beams; ++b) row_slots.push_back(image * beams + b), row_images.push_back(image);
    }
    rows = static_cast<int>(row_slots.size());
    upload_rows(row_slots, row_images);
  };
  use_rows();

  const bool best_at_max_length = options.early_stopping == EarlyStopping::Never && options.length_penalty > 0.0;
  const auto enqueue_step = [&] {
    gather_last_tokens(beam_history_.data(), row_slots_.data(), rows, max_length, position_.data(), tokens_.data(),
                       stream_);
    forward(rows);
    BeamTopKParams top_k{rows, vocab_size(), keep, beam_running_.data(), beam_values_.data(), beam_tokens_.data()};
    top_k.row_slots = row_slots_.data();
    top_k.history = beam_history_.data();
    top_k.position = position_.data();
    top_k.max_length = max_length;
    top_k.min_length = options.min_length;
    top_k.eos = options.eos;
    top_k.no_repeat_ngram_size = options.no_repeat_ngram_size;
    beam_top_k(top_k, logits_.data(), stream_);
    const BeamMergeParams merge{rows / beams, row_images_.data(), images, beams, beam_values_.data(),
                                beam_tokens_.data(), position_.data(), max_length, options.eos,
                                options.early_stopping == EarlyStopping::True, best_at_max_length,
                                length_denominators_.data(), beam_history_.data(), beam_history_scratch_.data(),
                                beam_running_.data(), cache_parents_.data(), finished_ids_.data(),
                                finished_ids_scratch_.data(), finished_lengths_.data(), finished_scores_.data(),
                                finished_sums_.data(), finished_done_.data(), improvement_possible_.data(),
                                beam_flags_.data()};
    beam_merge(merge, stream_);
    permute_caches(beams, row_images_.data(), rows / beams, beam_flags_.data(), 0);
    advance_position(position_.data(), stream_);
  };
  const auto addresses = step_addresses(
      {beam_history_.data(), beam_history_scratch_.data(), beam_running_.data(), beam_values_.data(),
       beam_tokens_.data(), cache_parents_.data(), finished_ids_.data(), finished_ids_scratch_.data(),
       finished_lengths_.data(), finished_scores_.data(), finished_sums_.data(), finished_done_.data(),
       improvement_possible_.data(), beam_flags_.data(), length_denominators_.data(), cache_pointers_.data()});

  // Each step's flags land in pinned memory; the host reads step n-1's while step n runs.
  const int flag_count = 1 + images;
  PinnedBuffer<int> flags(2 * size_t(flag_count));
  const StepEvents step_done;
  for (int step = 0; step + 1 < max_length; ++step) {
    const std::vector<int> settings = {2, rows, beams, max_length, options.min_length, options.no_repeat_ngram_size,
                                       options.eos, options.early_stopping == EarlyStopping::True ? 1 : 0,
                                       best_at_max_length ? 1 : 0, cache_length_, groups_};
    replay({addresses, settings}, enqueue_step);
    TROCR_CUDA_CHECK(cudaMemcpyAsync(flags.data() + (step % 2) * flag_count, beam_flags_.data(),
                                     flag_count * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    TROCR_CUDA_CHECK(cudaEventRecord(step_done[step], stream_));
    if (step == 0) continue;
    TROCR_CUDA_CHECK(cudaEventSynchronize(step_done[step - 1]));
    const int* seen = flags.data() + ((step - 1) % 2) * flag_count;
    if (seen[0] != 0) break;  // the step already queued changes nothing
    std::vector<int> searching = unfinished_images(active, seen + 1);  // not frozen
    if (searching.empty()) break;
    if (!worth_shrinking(searching.size(), active.size())) continue;
    active = std::move(searching);
    use_rows();
  }

  std::vector<int> ids(history.size()), lengths(slots);
  std::vector<float> scores(slots), sums(slots);
  finished_ids_.copy_to(ids, stream_);
  finished_lengths_.copy_to(lengths, stream_);
  finished_scores_.copy_to(scores, stream_);
  finished_sums_.copy_to(sums, stream_);
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<std::vector<Hypothesis>> results(images);
  for (int image = 0; image < images; ++image) {
    for (int r = 0; r < options.num_return_sequences; ++r) {
      const int slot = image * beams + r;
      const auto first = ids.begin() + size_t(slot) * max_length;
      results[image].push_back(beam_hypothesis({first, first + lengths[slot]}, scores[slot], sums[slot]));
    }
  }
  return results;
}

#define INSTANTIATE(T)                                              \
  template bool CudaModel<T>::beam_search_fits(const SearchOptions&) const; \
  template std::vector<std::vector<Hypothesis>> CudaModel<T>::beam_search(int, const SearchOptions&, int);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

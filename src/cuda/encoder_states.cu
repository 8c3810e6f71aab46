#include "cuda/encoder_states.h"

#include <algorithm>

#include "common/check.h"
#include "common/slot_runs.h"
#include "cuda/dtype_traits.h"
#include "cuda/linear.h"

namespace trocr::cuda {

template <typename T>
EncoderStates<T>::EncoderStates(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm,
                                int max_images)
    : weights_(weights), config_(config), gemm_(gemm), max_images_(max_images) {
  const size_t keys = size_t(max_images) * config.encoder.sequence_length();
  output_.resize(keys * config.encoder.hidden_size);
  if (weights.encoder_to_decoder) projected_.resize(keys * config.decoder.d_model);
  key_values_.resize(keys * weights.cross_key_values.out);
}

template <typename T>
void EncoderStates<T>::prepare(int images, bool key_values) {
  if (images > max_images_) fail("CUDA decoder: {} images, planned for {}", images, max_images_);
  const int rows = images * config_.encoder.sequence_length();
  if (weights_.encoder_to_decoder) linear(gemm_, output_.data(), rows, *weights_.encoder_to_decoder, projected_.data());
  if (key_values) key_values_into_slots(states(), 0, images);
}

template <typename T>
void EncoderStates<T>::key_values_into_slots(const T* states, int slot, int count) {
  const int sequence = config_.encoder.sequence_length();
  linear(gemm_, states, count * sequence, weights_.cross_key_values,
         key_values_.data() + int64_t(slot) * sequence * weights_.cross_key_values.out);
}

template <typename T>
void EncoderStates<T>::check_slots(const std::vector<int>& slots) const {
  const int count = static_cast<int>(slots.size());
  if (count > max_images_ || !std::is_sorted(slots.begin(), slots.end()) || slots.front() < 0 ||
      slots.back() >= max_images_) {
    fail("CUDA decoder: {} images into slots up to {}, planned for {}", count, slots.back(), max_images_);
  }
}

template <typename T>
void EncoderStates<T>::prepare_slots(const std::vector<int>& slots, bool key_values) {
  const int count = static_cast<int>(slots.size());
  if (count == 0) return;
  check_slots(slots);
  if (!key_values && slot_states_.empty()) fail("CUDA decoder: slots without K/V need their states kept");
  const int sequence = config_.encoder.sequence_length();
  if (weights_.encoder_to_decoder) {
    linear(gemm_, output_.data(), count * sequence, *weights_.encoder_to_decoder, projected_.data());
  }
  const int64_t state_width = weights_.cross_key_values.in;
  for (const SlotRun& run : consecutive_slot_runs(slots)) {
    const T* run_states = states() + int64_t(run.first) * sequence * state_width;
    if (key_values) key_values_into_slots(run_states, run.slot, static_cast<int>(run.count));
    if (!slot_states_.empty()) {
      TROCR_CUDA_CHECK(cudaMemcpyAsync(slot_states_.data() + int64_t(run.slot) * sequence * state_width, run_states,
                                       run.count * sequence * state_width * sizeof(T), cudaMemcpyDeviceToDevice,
                                       gemm_.stream()));
    }
  }
}

template <typename T>
void EncoderStates<T>::key_values_from_kept_states(const std::vector<int>& slots) {
  if (slots.empty()) return;
  check_slots(slots);
  if (slot_states_.empty()) fail("CUDA decoder: no states kept by slot");
  const int64_t slot_values = int64_t(config_.encoder.sequence_length()) * weights_.cross_key_values.in;
  for (const SlotRun& run : consecutive_slot_runs(slots)) {
    key_values_into_slots(slot_states_.data() + run.slot * slot_values, run.slot, static_cast<int>(run.count));
  }
}

template <typename T>
void EncoderStates<T>::keep_states_by_slot() {
  if (!slot_states_.empty()) return;
  const size_t values = size_t(max_images_) * config_.encoder.sequence_length() * weights_.cross_key_values.in;
  slot_states_.resize(values);
  TROCR_CUDA_CHECK(cudaMemsetAsync(slot_states_.data(), 0, values * sizeof(T), gemm_.stream()));
}

template <typename T>
void EncoderStates<T>::clear_slot(int slot) {
  if (slot < 0 || slot >= max_images_) fail("CUDA decoder: slot {}, planned for {}", slot, max_images_);
  const size_t values = size_t(config_.encoder.sequence_length()) * weights_.cross_key_values.out;
  TROCR_CUDA_CHECK(cudaMemsetAsync(key_values_.data() + slot * values, 0, values * sizeof(T), gemm_.stream()));
}

template class EncoderStates<float>;
template class EncoderStates<__half>;
template class EncoderStates<__nv_bfloat16>;

}  // namespace trocr::cuda

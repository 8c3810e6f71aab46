#pragma once
// What the decoder's cross-attention reads, for a planned number of images: the encoder
// output (written by the encoder), its projection to the decoder's width when the model has
// one (enc_to_dec_proj), and every layer's cross-attention keys and values, computed once per
// batch (prepare).
#include "cuda/cuda_weights.h"
#include "cuda/gemm.h"
#include "trocr/config.h"

namespace trocr::cuda {

template <typename T>
class EncoderStates {
 public:
  EncoderStates(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm, int max_images);

  // The encoder's last_hidden_state, [max_images * sequence, hidden]: the encoder writes here.
  T* output() { return output_.data(); }
  const T* output() const { return output_.data(); }
  // After the encoder has written `images` outputs: the projection, and with key_values the
  // per-layer K/V (the over-encoder-states cross-attention needs none).
  void prepare(int images, bool key_values);
  // Lines in flight: after the encoder has written slots.size() outputs (at 0, 1, ...), output
  // i's K/V go to image slot slots[i] (ascending; a run of consecutive slots is one product)
  // unless key_values is false, and its (projected) states too once keep_states_by_slot was
  // called (for the cross-attention over the encoder states); the outputs themselves are the next
  // admission's staging.
  void prepare_slots(const std::vector<int>& slots, bool key_values = true);
  void keep_states_by_slot();  // zeroed at first: every slot's states are finite
  // The K/V of slots prepared without them, from their kept states (ascending slots).
  void key_values_from_kept_states(const std::vector<int>& slots);
  // Zeroes image slot `slot`'s K/V (a slot only padding rows read: finite values).
  void clear_slot(int slot);

  // [images * sequence, cross width]: the (projected) encoder output.
  const T* states() const { return projected_.empty() ? output_.data() : projected_.data(); }
  // [images * sequence, cross width]: image slot s's states at s * sequence: the lines' kept
  // states once keep_states_by_slot was called, else the output of a whole batch (image i in slot i).
  const T* states_by_slot() const { return slot_states_.empty() ? states() : slot_states_.data(); }
  // [images * sequence, layers * 2 * d_model]: K then V of each layer, side by side per key.
  const T* key_values() const { return key_values_.data(); }
  int max_images() const { return max_images_; }

 private:
  void check_slots(const std::vector<int>& slots) const;  // ascending, within the plan
  // The per-layer K/V of `count` images' (projected) states, into slots slot, slot + 1, ...
  void key_values_into_slots(const T* states, int slot, int count);
  const DeviceWeights<T>& weights_;
  const ModelConfig& config_;
  Gemm& gemm_;
  int max_images_;
  DeviceBuffer<T> output_, projected_, key_values_, slot_states_;
};

}  // namespace trocr::cuda

#pragma once
// The decoder's self-attention caches: keys and values of every layer for a planned number of
// slots (sequences) and positions, allocated once; beam search moves them with their beams.
#include <vector>

#include "cuda/device_buffer.h"
#include "trocr/config.h"

namespace trocr::cuda {

template <typename T>
class KvCaches {
 public:
  KvCaches(const DecoderConfig& config, int slots, int positions);

  int slots() const { return slots_; }
  int positions() const { return positions_; }  // per slot
  // Layer l's caches, [slots, positions, d_model] each.
  T* keys(int layer) { return caches_.data() + (2 * size_t(layer)) * layer_elements(); }
  T* values(int layer) { return caches_.data() + (2 * size_t(layer) + 1) * layer_elements(); }
  // Every layer's key and value cache, for permute_beam_caches.
  void* const* table() const { return table_.data(); }
  int tables() const { return 2 * layers_; }
  int64_t slot_bytes() const { return int64_t(positions_) * width_ * sizeof(T); }
  int64_t position_bytes() const { return int64_t(width_) * sizeof(T); }

 private:
  size_t layer_elements() const { return size_t(slots_) * positions_ * width_; }
  int layers_, width_, slots_, positions_;
  DeviceBuffer<T> caches_;
  DeviceBuffer<void*> table_;
};

}  // namespace trocr::cuda

#pragma once
// The decoder's self-attention caches: keys and values of every layer for a planned number of
// slots (sequences) and positions, allocated once; beam search moves them with their beams.
#include <vector>

#include "cuda/device_buffer.h"
#include "cuda/kernels/kernels.h"
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
  // Beam reordering of every layer's caches, in one launch: slots are image-major, `beams` per
  // image, and slot j of the image images[i * beams] (i < image_count; null: image i) takes
  // what its slot parents[j] had, for positions [0, position.of(i * beams) + 1) (or [0, positions)
  // when position.values is null; max_positions bounds either). Nothing moves once *stop is set (stop may
  // be null). Device pointers, so that a captured step reads them when it replays.
  struct Permutation {
    int beams;
    const int* parents;
    const int* images;
    int image_count;
    StepPositions position;
    int positions;
    int max_positions;
    const int* stop;
  };
  void permute(const Permutation& permutation, cudaStream_t stream);

 private:
  size_t layer_elements() const { return size_t(slots_) * positions_ * width_; }
  void* const* table() const { return table_.data(); }
  int layers_, width_, slots_, positions_;
  DeviceBuffer<T> caches_;
  DeviceBuffer<void*> table_;
};

}  // namespace trocr::cuda

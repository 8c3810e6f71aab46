#pragma once
// Lines' states copied to the host a step behind (line_batch.cu): two page-locked buffers, each
// filled with one copy per device array of a search's state, so that the next step runs on the
// GPU while the host reads the last one's. Made at the first copy.
#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"

namespace trocr::cuda {

class LineReadback {
 public:
  struct Array {
    const void* device;
    size_t bytes;
    template <typename U>
    static Array of(const DeviceBuffer<U>& values) {
      return {values.data(), values.size() * sizeof(U)};
    }
  };
  explicit LineReadback(std::vector<Array> arrays) : arrays_(std::move(arrays)) {}
  ~LineReadback() {
    for (cudaEvent_t event : copied_) {
      if (event != nullptr) cudaEventDestroy(event);
    }
  }
  LineReadback(const LineReadback&) = delete;
  LineReadback& operator=(const LineReadback&) = delete;

  // Enqueues buffer's copies of every array on the stream, after the work enqueued so far.
  void copy(int buffer, cudaStream_t stream) {
    if (!host_[0]) {
      size_t bytes = 0;
      for (const Array& array : arrays_) offsets_.push_back(bytes), bytes += (array.bytes + 15) / 16 * 16;
      for (int i = 0; i < 2; ++i) {
        host_[i] = std::make_unique<PinnedBuffer<char>>(bytes);
        TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&copied_[i], cudaEventDisableTiming));
      }
    }
    char* to = host_[buffer]->data();
    for (size_t i = 0; i < arrays_.size(); ++i) {
      TROCR_CUDA_CHECK(cudaMemcpyAsync(to + offsets_[i], arrays_[i].device, arrays_[i].bytes, cudaMemcpyDeviceToHost,
                                       stream));
    }
    TROCR_CUDA_CHECK(cudaEventRecord(copied_[buffer], stream));
  }
  // Waits for buffer's copies; array i's host copy (valid until the buffer is copied again).
  template <typename U>
  const U* copied(int buffer, size_t array) {
    TROCR_CUDA_CHECK(cudaEventSynchronize(copied_[buffer]));
    return reinterpret_cast<const U*>(host_[buffer]->data() + offsets_.at(array));
  }

 private:
  std::vector<Array> arrays_;
  std::vector<size_t> offsets_;
  std::unique_ptr<PinnedBuffer<char>> host_[2];
  cudaEvent_t copied_[2] = {};
};

}  // namespace trocr::cuda

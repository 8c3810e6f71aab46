#pragma once
// An owned, non-blocking CUDA stream at a scheduling priority. Two streams of one engine share
// the GPU by priority: a line batch's decoding steps go first, its admissions' encoder fills
// what the steps leave (docs/CUDA_ENGINE.md, "admissions beside the steps").
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"

namespace trocr::cuda {

enum class StreamPriority { Low, High };

class Stream {
 public:
  explicit Stream(StreamPriority priority) {
    int lowest = 0, highest = 0;  // CUDA counts down: highest <= lowest
    TROCR_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&lowest, &highest));
    TROCR_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking,
                                                  priority == StreamPriority::High ? highest : lowest));
  }
  ~Stream() {
    if (stream_ == nullptr) return;
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace trocr::cuda

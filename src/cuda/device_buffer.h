#pragma once
// Owned device memory of `count` elements of T. Allocation happens at set-up, never in the
// decode loop.
#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "cuda/cuda_check.h"

namespace trocr::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) { resize(count); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    swap(other);
    return *this;
  }

  void resize(size_t count) {
    if (count == count_) return;
    release();
    if (count > 0) TROCR_CUDA_CHECK(cudaMalloc(&data_, count * sizeof(T)));
    count_ = count;
  }
  // At least `count` elements; the contents are lost when it has to grow (a workspace).
  void grow(size_t count) {
    if (count_ < count) resize(count);
  }
  void upload(const T* host, size_t count, cudaStream_t stream = nullptr) {
    resize(count);
    TROCR_CUDA_CHECK(cudaMemcpyAsync(data_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  void upload(const std::vector<T>& host, cudaStream_t stream = nullptr) {
    upload(host.data(), host.size(), stream);
  }
  // Copies host into the first host.size() elements, growing first: a workspace keeps its
  // address (captured graphs read it) unless it is too small. Pageable sources may go when
  // this returns (the driver has staged them).
  void assign(const std::vector<T>& host, cudaStream_t stream) {
    grow(host.size());
    TROCR_CUDA_CHECK(cudaMemcpyAsync(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  // Queues a copy of the first host.size() elements into host (complete after a stream sync).
  void copy_to(std::vector<T>& host, cudaStream_t stream) const {
    TROCR_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, host.size() * sizeof(T), cudaMemcpyDeviceToHost, stream));
  }
  std::vector<T> download(cudaStream_t stream = nullptr) const {
    std::vector<T> host(count_);
    TROCR_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost, stream));
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
    return host;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }

 private:
  void release() {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    count_ = 0;
  }
  void swap(DeviceBuffer& other) {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
  }
  T* data_ = nullptr;
  size_t count_ = 0;
};

// Page-locked host memory of `count` elements: device-to-host copies into it stay asynchronous
// (into pageable memory they wait for the stream), so the host can read a step's flags while the
// next step runs.
template <typename T>
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t count) {
    TROCR_CUDA_CHECK(cudaMallocHost(&data_, count * sizeof(T)));
    count_ = count;
  }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* data() { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

}  // namespace trocr::cuda

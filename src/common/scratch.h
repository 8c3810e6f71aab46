#pragma once
// Float workspace that keeps its allocation from one call to the next and is never zeroed:
// whoever takes it writes every value it later reads. Large fresh buffers cost a page fault per
// 4 KB and a memset on every call (a trocr-small batch of 8 on the CPU made ~40 MB of them per
// generate call); kept ones cost that once.
#include <cstddef>
#include <functional>
#include <memory>

namespace trocr {

// How a buffer's memory is obtained, when not with new[]: a backend's choice for data it
// uploads (page-locked host memory for CUDA, so that copies run at DMA speed).
struct HostAllocator {
  std::function<float*(size_t count)> allocate;  // throws on failure
  std::function<void(float*)> release;
};

class Scratch {
 public:
  explicit Scratch(HostAllocator allocator = {}) : allocator_(std::move(allocator)) {}
  Scratch(Scratch&&) = default;
  Scratch& operator=(Scratch&&) = default;

  // At least `count` floats, their contents undefined; earlier pointers are invalid once it grows.
  float* floats(size_t count) {
    if (count > capacity_) {
      data_.reset();
      if (allocator_.allocate) {
        data_ = Owned(allocator_.allocate(count), allocator_.release);
      } else {
        data_ = Owned(new float[count], [](float* values) { delete[] values; });
      }
      capacity_ = count;
    }
    return data_.get();
  }
  float* data() const { return data_.get(); }

 private:
  using Owned = std::unique_ptr<float[], std::function<void(float*)>>;
  HostAllocator allocator_;
  Owned data_;
  size_t capacity_ = 0;
};

}  // namespace trocr

#pragma once
// Float workspace that keeps its allocation from one call to the next and is never zeroed:
// whoever takes it writes every value it later reads. Large fresh buffers cost a page fault per
// 4 KB and a memset on every call (a trocr-small batch of 8 on the CPU made ~40 MB of them per
// generate call); kept ones cost that once.
#include <cstddef>
#include <memory>

namespace trocr {

class Scratch {
 public:
  // At least `count` floats, their contents undefined; earlier pointers are invalid once it grows.
  float* floats(size_t count) {
    if (count > capacity_) {
      data_.reset(new float[count]);
      capacity_ = count;
    }
    return data_.get();
  }
  float* data() const { return data_.get(); }

 private:
  std::unique_ptr<float[]> data_;
  size_t capacity_ = 0;
};

}  // namespace trocr

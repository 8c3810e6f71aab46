#pragma once
// Bounds-checked little-endian reads over untrusted bytes. Every failure is an Error that
// names what was being read.
#include <cstdint>
#include <cstring>
#include <string>

#include "common/check.h"

namespace trocr {

class ByteReader {
 public:
  ByteReader(const unsigned char* data, size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  size_t position() const { return position_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - position_; }
  bool at_end() const { return position_ == size_; }
  const std::string& what() const { return what_; }

  void seek(size_t position) {
    if (position > size_) fail("{}: offset {} is past the end ({} bytes)", what_, position, size_);
    position_ = position;
  }

  const unsigned char* take(size_t count) {
    if (count > remaining()) {
      fail("{}: truncated: needed {} bytes at offset {}, only {} left", what_, count, position_,
           remaining());
    }
    const unsigned char* start = data_ + position_;
    position_ += count;
    return start;
  }

  template <typename T>
  T read() {
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;  // the hosts we build for are little-endian
  }

  uint8_t u8() { return read<uint8_t>(); }
  uint16_t u16() { return read<uint16_t>(); }
  uint32_t u32() { return read<uint32_t>(); }
  uint64_t u64() { return read<uint64_t>(); }

  std::string string(size_t count) {
    const unsigned char* start = take(count);
    return std::string(reinterpret_cast<const char*>(start), count);
  }

 private:
  const unsigned char* data_;
  size_t size_;
  size_t position_ = 0;
  std::string what_;
};

}  // namespace trocr

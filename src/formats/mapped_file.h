#pragma once
// A read-only memory mapping of a whole file. Checkpoint readers point tensors into it
// instead of copying weights.
#include <cstddef>
#include <string>

namespace trocr {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the whole pages of [begin, begin + bytes) from this process's memory once they have
  // been read (a later read loads them from the file again): converting a checkpoint then never
  // holds the file and its converted copy in memory at once.
  void release(const void* begin, size_t bytes) const;

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; errors name the file.
std::string read_text_file(const std::string& path);

}  // namespace trocr

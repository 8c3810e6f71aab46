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

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; errors name the file.
std::string read_text_file(const std::string& path);

}  // namespace trocr

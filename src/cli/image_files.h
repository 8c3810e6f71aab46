#pragma once
// Reading the image files of a command line: expanding folders, decoding many files at once.
#include <future>
#include <string>
#include <vector>

#include "trocr/image.h"

namespace trocr::cli {

// "-": one image read from standard input.
inline constexpr const char* kStandardInput = "-";

// Files as given, folders expanded to every image below them (recursively, in path order), list
// files read line by line (a `path<TAB>label` line contributes its path; relative paths are from
// the list's folder). "-" stays, and may be given once.

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs,
                                             const std::string& list_file);

// Decodes the files on all cores. A file that fails leaves an empty image and its message.
struct DecodedImages {
  std::vector<std::string> paths;
  std::vector<RgbImage> images;
  std::vector<std::string> errors;  // empty where the file decoded

  // Moves out the images that decoded; `positions` receives their indices in this batch.
  std::vector<RgbImage> take_readable(std::vector<size_t>& positions);
};
DecodedImages decode_image_files(const std::vector<std::string>& paths);
RgbImage read_standard_input_image();

// Decoded files in order, `read_size` at a time (Recognizer::images_per_call); the next ones
// are decoded on other threads while the caller runs the model on the current ones.
class PrefetchingImageReader {
 public:
  PrefetchingImageReader(std::vector<std::string> paths, size_t read_size);
  ~PrefetchingImageReader();
  bool done() const { return first_ >= paths_.size(); }
  DecodedImages next();

 private:
  void start_decoding();
  std::vector<std::string> next_paths() const;
  std::vector<std::string> paths_;
  size_t read_size_;
  size_t first_ = 0;
  std::future<DecodedImages> pending_;
};

}  // namespace trocr::cli

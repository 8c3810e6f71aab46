#include "cli/image_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "common/parallel.h"

namespace trocr::cli {

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs,
                                             const std::string& list_file) {
  std::vector<std::string> given = inputs;
  if (!list_file.empty()) {
    std::ifstream list(list_file);
    if (!list) fail("{}: cannot open the image list", list_file);
    // Relative paths are the list's own, as in `trocr eval` and trocr-chinese's dataset lists.
    const std::filesystem::path base = std::filesystem::path(list_file).parent_path();
    for (std::string line; std::getline(list, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto tab = line.find('\t');
      if (tab != std::string::npos) line.resize(tab);
      if (line.empty()) continue;
      const std::filesystem::path path = line;
      given.push_back((path.is_absolute() ? path : base / path).string());
    }
  }
  std::vector<std::string> images;
  for (const std::string& input : given) {
    if (!std::filesystem::is_directory(input)) {
      images.push_back(input);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(input)) {
      if (entry.is_regular_file() && has_image_extension(entry.path().string())) found.push_back(entry.path().string());
    }
    std::sort(found.begin(), found.end());
    images.insert(images.end(), found.begin(), found.end());
  }
  if (images.empty()) fail("no images given (pass files, directories or -l LIST)");
  return images;
}

DecodedImages decode_image_files(const std::vector<std::string>& paths) {
  DecodedImages decoded;
  decoded.paths = paths;
  decoded.images.resize(paths.size());
  decoded.errors.resize(paths.size());
  parallel_for(paths.size(), [&](size_t i) {
    try {
      decoded.images[i] = read_image_file(paths[i]);
    } catch (const Error& error) {
      decoded.errors[i] = error.what();
    }
  });
  return decoded;
}

std::vector<RgbImage> DecodedImages::take_readable(std::vector<size_t>& positions) {
  std::vector<RgbImage> readable;
  positions.clear();
  for (size_t i = 0; i < images.size(); ++i) {
    if (!errors[i].empty()) continue;
    readable.push_back(std::move(images[i]));
    positions.push_back(i);
  }
  return readable;
}

PrefetchingImageReader::PrefetchingImageReader(std::vector<std::string> paths, size_t batch_size)
    : paths_(std::move(paths)), batch_size_(std::max<size_t>(1, batch_size)) {
  start_decoding();
}

PrefetchingImageReader::~PrefetchingImageReader() {
  if (pending_.valid()) pending_.wait();
}

std::vector<std::string> PrefetchingImageReader::next_paths() const {
  const size_t end = std::min(paths_.size(), first_ + batch_size_);
  return {paths_.begin() + first_, paths_.begin() + end};
}

void PrefetchingImageReader::start_decoding() {
  if (done()) return;
  pending_ = std::async(std::launch::async, [batch = next_paths()] { return decode_image_files(batch); });
}

DecodedImages PrefetchingImageReader::next() {
  DecodedImages batch = pending_.get();
  first_ += batch.images.size();
  start_decoding();
  return batch;
}

}  // namespace trocr::cli

#include "cli/image_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

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
    if (input == kStandardInput || !std::filesystem::is_directory(input)) {
      images.push_back(input);
      continue;
    }
    // Every image below the folder (trocr-chinese's dataset/cust-data/*/*.jpg), in path order
    // (folder by folder, as sorted names), symlinked folders not followed (no cycles).
    std::vector<std::filesystem::path> found;
    std::error_code error;
    std::filesystem::recursive_directory_iterator entry(
        input, std::filesystem::directory_options::skip_permission_denied, error);
    for (; !error && entry != std::filesystem::recursive_directory_iterator(); entry.increment(error)) {
      if (entry->is_regular_file() && has_image_extension(entry->path().string())) found.push_back(entry->path());
    }
    if (error) fail("{}: cannot read the folder: {}", input, error.message());
    std::sort(found.begin(), found.end());
    for (const auto& path : found) images.push_back(path.string());
  }
  if (std::count(images.begin(), images.end(), kStandardInput) > 1) {
    fail("'{}' (an image from standard input) can be given once", kStandardInput);
  }
  if (images.empty()) fail("no images given (pass files, directories or -l LIST)");
  return images;
}

RgbImage read_standard_input_image() {
  std::vector<uint8_t> bytes;
  char buffer[1 << 16];
  while (std::cin.read(buffer, sizeof(buffer)) || std::cin.gcount() > 0) {
    bytes.insert(bytes.end(), buffer, buffer + std::cin.gcount());
  }
  if (bytes.empty()) fail("{}: standard input is empty (pipe an image into it)", kStandardInput);
  return decode_image(bytes.data(), bytes.size(), "standard input");
}

DecodedImages decode_image_files(const std::vector<std::string>& paths) {
  DecodedImages decoded;
  decoded.paths = paths;
  decoded.images.resize(paths.size());
  decoded.errors.resize(paths.size());
  parallel_for(paths.size(), [&](size_t i) {
    try {
      decoded.images[i] = paths[i] == kStandardInput ? read_standard_input_image() : read_image_file(paths[i]);
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

PrefetchingImageReader::PrefetchingImageReader(std::vector<std::string> paths, size_t read_size)
    : paths_(std::move(paths)), read_size_(std::max<size_t>(1, read_size)) {
  start_decoding();
}

PrefetchingImageReader::~PrefetchingImageReader() {
  if (pending_.valid()) pending_.wait();
}

std::vector<std::string> PrefetchingImageReader::next_paths() const {
  const size_t end = std::min(paths_.size(), first_ + read_size_);
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

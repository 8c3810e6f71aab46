#include "evaluation/labeled_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "formats/mapped_file.h"
#include "text/utf8.h"
#include "trocr/image.h"

namespace trocr {
namespace {

namespace fs = std::filesystem;

// Python's str.strip() for the whitespace that label files end in.
std::string strip(const std::string& text) {
  const char* blanks = " \t\r\n\f\v";
  const size_t first = text.find_first_not_of(blanks);
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(blanks) - first + 1);
}

std::string checked_label(const std::string& raw, const std::string& where) {
  if (utf8_sanitize(raw) != raw) fail("{}: the label is not valid UTF-8", where);
  return strip(raw);
}

std::vector<LabeledImage> read_folder(const fs::path& folder) {
  std::vector<LabeledImage> images;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (!entry.is_regular_file() || !has_image_extension(entry.path().string())) continue;
    fs::path label_path = entry.path();
    label_path.replace_extension(".txt");
    if (!fs::is_regular_file(label_path)) {
      fail("{}: no label file {} beside it (trocr-chinese's layout: NAME.jpg with NAME.txt)",
           entry.path().string(), label_path.filename().string());
    }
    images.push_back({entry.path().string(),
                      checked_label(read_text_file(label_path.string()), label_path.string())});
  }
  std::sort(images.begin(), images.end(),
            [](const LabeledImage& a, const LabeledImage& b) { return a.path < b.path; });
  if (images.empty()) fail("{}: no .jpg/.jpeg/.png images in this folder", folder.string());
  return images;
}

std::vector<LabeledImage> read_list(const fs::path& list_path) {
  std::ifstream list(list_path, std::ios::binary);
  if (!list) fail("{}: cannot open the dataset list", list_path.string());
  const fs::path base = list_path.parent_path();
  std::vector<LabeledImage> images;
  int line_number = 0;
  for (std::string line; std::getline(list, line);) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (strip(line).empty()) continue;
    const std::string where = list_path.string() + ":" + std::to_string(line_number);
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0) fail("{}: expected `path<TAB>label`", where);
    const fs::path image = line.substr(0, tab);
    images.push_back({(image.is_absolute() ? image : base / image).string(),
                      checked_label(line.substr(tab + 1), where)});
  }
  if (images.empty()) fail("{}: the dataset list has no `path<TAB>label` lines", list_path.string());
  return images;
}

}  // namespace

std::vector<LabeledImage> read_labeled_dataset(const std::string& folder_or_list) {
  std::error_code error;
  if (fs::is_directory(folder_or_list, error)) return read_folder(folder_or_list);
  if (!fs::exists(folder_or_list, error)) fail("{}: no such dataset folder or list file", folder_or_list);
  return read_list(folder_or_list);
}

}  // namespace trocr

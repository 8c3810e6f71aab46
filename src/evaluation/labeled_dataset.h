#pragma once
// Evaluation sets: images with their true text. Two layouts are read:
//  - a folder in trocr-chinese's layout, NAME.jpg (or .png/.jpeg) with NAME.txt beside it;
//  - a list file of `path<TAB>label` lines, paths relative to the list's folder.
#include <string>
#include <vector>

namespace trocr {

struct LabeledImage {
  std::string path;
  std::string label;
};

// Sorted by path for a folder, in file order for a list. Errors name the file and line.
std::vector<LabeledImage> read_labeled_dataset(const std::string& folder_or_list);

}  // namespace trocr

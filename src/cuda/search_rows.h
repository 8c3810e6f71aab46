#pragma once
// How the device searches shrink their batch: to the images of `active` whose done[image] is
// still 0. Each row count is a new graph, so the batch shrinks only once a quarter of its images
// are done.
#include <vector>

namespace trocr::cuda {

inline std::vector<int> unfinished_images(const std::vector<int>& active, const int* done) {
  std::vector<int> unfinished;
  for (int image : active) {
    if (done[image] == 0) unfinished.push_back(image);
  }
  return unfinished;
}
inline bool worth_shrinking(size_t unfinished, size_t active) { return unfinished * 4 <= active * 3; }

}  // namespace trocr::cuda

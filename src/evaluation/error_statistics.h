#pragma once
// How far one engine's tensor is from a reference (HF fp32): absolute and relative error,
// each as max, mean and median over all elements.
//
// The relative error of an element is |ours - reference| / max(|reference|, floor) with floor =
// 1% of the reference's RMS: near-zero reference values (common in logits and activations)
// would otherwise turn tiny absolute differences into meaningless huge ratios.
#include <cstddef>
#include <vector>

namespace trocr {

struct ErrorStatistics {
  size_t elements = 0;
  size_t non_finite = 0;  // elements of ours that are NaN or infinite (counted as errors)
  double max_abs = 0, mean_abs = 0, median_abs = 0;
  double max_rel = 0, mean_rel = 0, median_rel = 0;
  double reference_rms = 0;
};

class ErrorAccumulator {
 public:
  // Adds a pair of tensors of `count` elements (a Error if the sizes differ).
  void add(const std::vector<float>& ours, const std::vector<float>& reference);
  ErrorStatistics statistics() const;

 private:
  std::vector<float> absolute_;   // |ours - reference|, +inf where ours is not finite
  std::vector<float> reference_;  // |reference|
};

}  // namespace trocr

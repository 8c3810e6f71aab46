#include "evaluation/error_statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/check.h"

namespace trocr {
namespace {

// The median of the values, which are reordered.
double median(std::vector<float>& values) {
  if (values.empty()) return 0.0;
  const size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + middle, values.end());
  const double upper = values[middle];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + middle);
  return 0.5 * (lower + upper);
}

}  // namespace

void ErrorAccumulator::add(const std::vector<float>& ours, const std::vector<float>& reference) {
  if (ours.size() != reference.size()) {
    fail("error statistics: {} values compared with a reference of {}", ours.size(), reference.size());
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    const bool finite = std::isfinite(ours[i]);
    absolute_.push_back(finite ? std::fabs(ours[i] - reference[i]) : std::numeric_limits<float>::infinity());
    reference_.push_back(std::fabs(reference[i]));
  }
}

ErrorStatistics ErrorAccumulator::statistics() const {
  ErrorStatistics stats;
  stats.elements = absolute_.size();
  if (stats.elements == 0) return stats;
  double squares = 0.0;
  for (float value : reference_) squares += double(value) * value;
  stats.reference_rms = std::sqrt(squares / stats.elements);
  const double floor = std::max(0.01 * stats.reference_rms, 1e-30);
  std::vector<float> absolute = absolute_, relative(stats.elements);
  double absolute_sum = 0.0, relative_sum = 0.0;
  for (size_t i = 0; i < stats.elements; ++i) {
    relative[i] = float(absolute[i] / std::max(double(reference_[i]), floor));
    stats.non_finite += std::isinf(absolute[i]);
    absolute_sum += absolute[i];
    relative_sum += relative[i];
    stats.max_abs = std::max(stats.max_abs, double(absolute[i]));
    stats.max_rel = std::max(stats.max_rel, double(relative[i]));
  }
  stats.mean_abs = absolute_sum / stats.elements;
  stats.mean_rel = relative_sum / stats.elements;
  stats.median_abs = median(absolute);
  stats.median_rel = median(relative);
  return stats;
}

}  // namespace trocr

// Runs of consecutive slots (src/common/slot_runs.h), as the CPU decoder and the CUDA encoder
// states use them to compute the K/V of images admitted into free slots, one product per run.
#include "common/slot_runs.h"

#include <gtest/gtest.h>

namespace trocr::test {
namespace {

std::vector<std::vector<size_t>> runs_of(const std::vector<int>& slots) {
  std::vector<std::vector<size_t>> runs;
  for (const SlotRun& run : consecutive_slot_runs(slots)) runs.push_back({run.first, run.count, size_t(run.slot)});
  return runs;
}

TEST(SlotRuns, ConsecutiveSlotsShareARun) {
  EXPECT_EQ(runs_of({0, 1, 2, 3}), (std::vector<std::vector<size_t>>{{0, 4, 0}})) << "a whole batch";
  EXPECT_EQ(runs_of({2, 3, 7, 9, 10, 11}), (std::vector<std::vector<size_t>>{{0, 2, 2}, {2, 1, 7}, {3, 3, 9}}));
  EXPECT_EQ(runs_of({5}), (std::vector<std::vector<size_t>>{{0, 1, 5}}));
  EXPECT_TRUE(runs_of({}).empty());
  EXPECT_EQ(runs_of({4, 3}), (std::vector<std::vector<size_t>>{{0, 1, 4}, {1, 1, 3}})) << "descending is no run";
}

}  // namespace
}  // namespace trocr::test

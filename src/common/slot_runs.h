#pragma once
// Images written into numbered slots (lines in flight take the slots that are free): the runs of
// consecutive slots in a list, so that one product serves each run (a whole batch in slots
// 0 .. n-1 is one run). The CPU decoder and the CUDA encoder states compute cross-attention K/V so.
#include <cstddef>
#include <vector>

namespace trocr {

struct SlotRun {
  size_t first;  // the run's first entry in the list
  size_t count;  // entries (and slots) in the run
  int slot;      // the slot of its first entry
};

inline std::vector<SlotRun> consecutive_slot_runs(const std::vector<int>& slots) {
  std::vector<SlotRun> runs;
  for (size_t first = 0, end; first < slots.size(); first = end) {
    for (end = first + 1; end < slots.size() && slots[end] == slots[end - 1] + 1;) ++end;
    runs.push_back({first, end - first, slots[first]});
  }
  return runs;
}

}  // namespace trocr

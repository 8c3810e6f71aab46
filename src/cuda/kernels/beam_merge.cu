// Beam search's bookkeeping on the device: advance_beams (src/decoding/beam_search.cc, HF's
// _beam_search) for a batch in one launch, with the scoring rules of model/trocr_rules.h, so that
// the two agree bit for bit given the same per-row top-k (tests/cuda/beam_merge_test.cc checks
// it state for state). A warp owns an image (its lanes share the top-k scans and the sequence
// copies); an image's work is small, so one block serves the batch, and its reductions give
// HF's whole-batch stopping rule.
#include <climits>

#include "cuda/cuda_check.h"
#include "cuda/kernels/kernels.h"
#include "model/trocr_rules.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 512;  // a warp per image, 16 images at a time
constexpr int kMaxKeep = 2 * kMaxBeams;

// torch.topk's order: the larger value first, the lower index on ties.
__device__ bool ranks_before(float value, int index, float other_value, int other_index) {
  return value > other_value || (value == other_value && index < other_index);
}

// The indices of the k best of score(0 .. count-1), best first, into out (the same in every lane
// of the warp). Lane l holds items l, l + 32, ... (read once: the scores live in global memory);
// each round takes the best item that ranks after the previous round's, so nothing needs marking.
template <typename Score>
__device__ void warp_top_k(int count, int k, Score score, int* out) {
  constexpr int kPerLane = kMaxBeams * kMaxKeep / 32;
  const int lane = threadIdx.x % 32;
  float mine[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) mine[j] = lane + 32 * j < count ? score(lane + 32 * j) : -INFINITY;
  float last_value = INFINITY;
  int last_index = -1;
  for (int round = 0; round < k; ++round) {
    int best = INT_MAX;  // none
    float best_value = -INFINITY;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int i = lane + 32 * j;
      if (i < count && ranks_before(last_value, last_index, mine[j], i) &&
          (best == INT_MAX || ranks_before(mine[j], i, best_value, best))) {
        best = i, best_value = mine[j];
      }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      const float other_value = __shfl_xor_sync(0xffffffff, best_value, offset);
      const int other = __shfl_xor_sync(0xffffffff, best, offset);
      if (other != INT_MAX && (best == INT_MAX || ranks_before(other_value, other, best_value, best))) {
        best = other, best_value = other_value;
      }
    }
    out[round] = best;
    last_value = best_value, last_index = best;
  }
}

// Lanes copy ids together; callers __syncwarp() before the copied ids are read or overwritten.
__device__ void warp_copy_ids(const int* from, int* to, int count) {
  for (int i = threadIdx.x % 32; i < count; i += 32) to[i] = from[i];
}

// One image's step, by one warp (beam_search.cc's loop body for one state, then its part of the
// stopping rule). Every lane computes the same decisions; lane 0 stores the scalars. Returns
// whether every candidate of the image stopped.
__device__ bool merge_image(const BeamMergeParams& p, int active, int image, int length) {
  const int beams = p.beams, keep = 2 * beams;
  const int first_slot = image * beams;
  const bool leader = threadIdx.x % 32 == 0;
  const float* values = p.values + int64_t(active) * beams * keep;
  const int* tokens = p.tokens + int64_t(active) * beams * keep;

  int best[kMaxKeep];
  warp_top_k(beams * keep, keep, [&](int i) { return values[i]; }, best);
  float scores[kMaxKeep];
  int parents[kMaxKeep], next_tokens[kMaxKeep];
  bool stops[kMaxKeep];
  bool every_candidate_stops = true;
  for (int c = 0; c < keep; ++c) {
    scores[c] = values[best[c]];
    parents[c] = best[c] / keep;
    next_tokens[c] = tokens[best[c]];
    stops[c] = next_tokens[c] == p.eos || length + 1 >= p.max_length;
    every_candidate_stops = every_candidate_stops && stops[c];
  }
  // The next running beams: the best continuations that did not stop.
  int next[kMaxBeams];
  warp_top_k(keep, beams, [&](int c) { return running_candidate_score(scores[c], stops[c]); }, next);

  // Offer the top num_beams candidates that stopped to the finished set.
  bool all_done = true;
  for (int i = 0; i < beams; ++i) all_done = all_done && p.finished_done[first_slot + i];
  const bool full = all_done && p.early_stopping;
  const bool improvement = p.improvement_possible[image];
  const float denominator = p.length_denominators[length];
  const auto merged_score = [&](int i) {
    if (i < beams) return p.finished_scores[first_slot + i];
    const int c = i - beams;
    return finished_candidate_score(scores[c], denominator, full, improvement, stops[c] && c < beams);
  };
  int kept[kMaxBeams];
  warp_top_k(beams + keep, beams, merged_score, kept);
  float kept_scores[kMaxBeams], kept_sums[kMaxBeams];
  int kept_lengths[kMaxBeams];
  bool kept_done[kMaxBeams];
  for (int j = 0; j < beams; ++j) {
    const int i = kept[j];
    int* ids = p.finished_ids_scratch + int64_t(first_slot + j) * p.max_length;
    kept_scores[j] = merged_score(i);
    if (i < beams) {
      kept_sums[j] = p.finished_sums[first_slot + i];
      kept_lengths[j] = p.finished_lengths[first_slot + i];
      kept_done[j] = p.finished_done[first_slot + i];
      warp_copy_ids(p.finished_ids + int64_t(first_slot + i) * p.max_length, ids, kept_lengths[j]);
    } else {
      const int c = i - beams;
      const bool just_finished = stops[c] && c < beams;
      kept_sums[j] = scores[c];
      kept_done[j] = just_finished;
      kept_lengths[j] = just_finished ? length + 1 : 0;
      if (just_finished) {
        warp_copy_ids(p.history + int64_t(first_slot + parents[c]) * p.max_length, ids, length);
        if (leader) ids[length] = next_tokens[c];
      }
    }
  }
  // The running sequences grow by their chosen tokens; the caches follow their parents.
  for (int j = 0; j < beams; ++j) {
    const int c = next[j];
    int* sequence = p.history_scratch + int64_t(first_slot + j) * p.max_length;
    warp_copy_ids(p.history + int64_t(first_slot + parents[c]) * p.max_length, sequence, length);
    if (leader) sequence[length] = next_tokens[c];
  }
  __syncwarp();  // every lane read the old finished set and sequences, and wrote the scratch
  for (int j = 0; j < beams; ++j) {
    const int slot = first_slot + j, c = next[j];
    warp_copy_ids(p.finished_ids_scratch + int64_t(slot) * p.max_length, p.finished_ids + int64_t(slot) * p.max_length,
                  kept_lengths[j]);
    warp_copy_ids(p.history_scratch + int64_t(slot) * p.max_length, p.history + int64_t(slot) * p.max_length,
                  length + 1);
    if (leader) {
      p.finished_scores[slot] = kept_scores[j];
      p.finished_sums[slot] = kept_sums[j];
      p.finished_lengths[slot] = kept_lengths[j];
      p.finished_done[slot] = kept_done[j];
      p.running[slot] = running_candidate_score(scores[c], stops[c]);
      p.parents[slot] = parents[c];
    }
  }

  // HF's early-stop heuristic for this image, after the length grew by one.
  const int best_length = best_possible_length(p.never_stop_early, p.length_penalty, p.max_length, length);
  const float best_running = running_candidate_score(scores[next[0]], stops[next[0]]);
  all_done = true;
  for (int j = 0; j < beams; ++j) all_done = all_done && kept_done[j];
  const bool beats_some = can_improve(best_running, p.length_denominators[best_length], kept_scores, kept_done, beams);
  const bool still_possible = improvement && beats_some;
  if (leader) {
    p.improvement_possible[image] = still_possible;
    p.flags[1 + image] = !still_possible || (all_done && p.early_stopping) || (!p.whole_batch && every_candidate_stops);
  }
  return every_candidate_stops;
}

__global__ void __launch_bounds__(kThreads) beam_merge_kernel(BeamMergeParams p) {
  if (p.whole_batch && *p.flags != 0) return;  // the search has stopped: later steps change nothing
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32, lane = threadIdx.x % 32;
  bool every_candidate_stops = true;
  for (int active = warp; active < p.active_images; active += warps) {
    const int image = p.row_images[int64_t(active) * p.beams];
    if (p.flags[1 + image]) {  // frozen: its caches stay where they are
      if (lane < p.beams) p.parents[image * p.beams + lane] = lane;
      continue;
    }
    const int length = p.position.of(active * p.beams) + 1;
    every_candidate_stops = merge_image(p, active, image, length) && every_candidate_stops;
  }
  if (!p.whole_batch) return;
  __syncthreads();  // every image's state is written
  // HF's whole-batch rule, over every image (frozen ones included).
  bool any_improvement = false, every_done = true;
  for (int image = threadIdx.x; image < p.images; image += blockDim.x) {
    any_improvement = any_improvement || p.improvement_possible[image];
    for (int j = 0; j < p.beams; ++j) every_done = every_done && p.finished_done[image * p.beams + j];
  }
  // Every thread reads *p.flags above before thread 0 may write it below.
  const bool candidates_stop = __syncthreads_and(every_candidate_stops);
  const bool improvement = __syncthreads_or(any_improvement);
  const bool done = __syncthreads_and(every_done);
  const bool open_beam = !(done && p.early_stopping);
  if (threadIdx.x == 0) *p.flags = !(improvement && open_beam && !candidates_stop);
}

__global__ void start_beam_lines_kernel(StartBeamLinesParams p) {
  const int line = p.lines[blockIdx.x];
  const int first_slot = line * p.beams;
  for (int i = threadIdx.x; i < p.beams * p.max_length; i += blockDim.x) {
    p.history[int64_t(first_slot) * p.max_length + i] = i % p.max_length == 0 ? p.start : p.pad;
  }
  for (int j = threadIdx.x; j < p.beams; j += blockDim.x) {
    p.running[first_slot + j] = j == 0 ? 0.0f : kBeamSentinel;
    p.finished_lengths[first_slot + j] = 0;
    p.finished_done[first_slot + j] = 0;
    p.finished_scores[first_slot + j] = kBeamSentinel;
    p.finished_sums[first_slot + j] = 0.0f;
  }
  if (threadIdx.x == 0) {
    p.improvement_possible[line] = 1;
    p.flags[1 + line] = p.frozen;
    p.positions[line] = 0;
  }
}

}  // namespace

void start_beam_lines(const StartBeamLinesParams& params, cudaStream_t stream) {
  if (params.count == 0) return;
  start_beam_lines_kernel<<<params.count, 128, 0, stream>>>(params);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

void beam_merge(const BeamMergeParams& params, cudaStream_t stream) {
  if (params.beams > kMaxBeams) fail("beam merge: {} beams > {}", params.beams, kMaxBeams);
  if (params.active_images == 0) return;
  beam_merge_kernel<<<1, kThreads, 0, stream>>>(params);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace trocr::cuda

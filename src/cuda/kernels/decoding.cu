// Device-side pieces of decoding: greedy token choice with HF's processors, the step
// position, and beam reordering of KV caches.
#include <climits>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"
#include "model/trocr_rules.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;

// HF's processors as a bitmap of banned next tokens in shared memory (one bit per token, no
// limit on how many): min_length bans eos while the sequence (`length` tokens) is shorter, and
// no_repeat_ngram bans the last token of every earlier n-gram that starts with the sequence's
// last n-1 tokens. Block-wide; the bitmap is ready when it returns.
__device__ void clear_bans(unsigned* bits, int vocab) {
  for (int word = threadIdx.x; word < (vocab + 31) / 32; word += blockDim.x) bits[word] = 0;
  __syncthreads();
}

__device__ void ban(unsigned* bits, int token) { atomicOr(&bits[token / 32], 1u << (token % 32)); }

__device__ void mark_banned_tokens(const int* sequence, int length, int ngram_size, int min_length, int eos,
                                   unsigned* bits, int vocab) {
  clear_bans(bits, vocab);
  for (int start = threadIdx.x; start < ngram_starts(length, ngram_size); start += blockDim.x) {
    const int token = ngram_banned_token(sequence, length, ngram_size, start);
    if (token >= 0) ban(bits, token);
  }
  if (threadIdx.x == 0 && min_length_bans_eos(length, min_length)) ban(bits, eos);
  __syncthreads();
}

__device__ bool is_banned(const unsigned* bits, int token) { return (bits[token / 32] >> (token % 32)) & 1u; }

size_t banned_bitmap_bytes(int vocab) {
  const size_t bytes = (size_t(vocab) + 31) / 32 * sizeof(unsigned);
  if (bytes > 48 * 1024) fail("decoding kernels: a vocabulary of {} tokens is too large for the ban bitmap", vocab);
  return bytes;
}

__global__ void greedy_select_kernel(GreedyParams params, const float* logits) {
  extern __shared__ unsigned banned[];
  __shared__ float best_values[kThreads / 32];
  __shared__ int best_indices[kThreads / 32];
  __shared__ float reduce[kThreads / 32];
  const int row = blockIdx.x;
  start_next_kernel();
  wait_for_previous_kernel();
  const int position = params.position.of(row);
  const int image = params.images[row];
  int* history = params.history + static_cast<int64_t>(image) * params.max_length;
  if (params.finished[image]) {
    if (threadIdx.x == 0) history[position + 1] = params.pad;
    return;
  }
  mark_banned_tokens(history, position + 1, params.no_repeat_ngram_size, params.min_length, params.eos, banned,
                     params.vocab);
  const float* scores = logits + static_cast<int64_t>(row) * params.vocab;
  float best = -INFINITY;
  int best_index = params.vocab;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) {
    const float value = is_banned(banned, t) ? -INFINITY : scores[t];
    if (value > best || (value == best && t < best_index)) best = value, best_index = t;
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffff, best, offset);
    const int other_index = __shfl_xor_sync(0xffffffff, best_index, offset);
    if (other > best || (other == best && other_index < best_index)) best = other, best_index = other_index;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) best_values[warp] = best, best_indices[warp] = best_index;
  __syncthreads();
  best = best_values[0];
  best_index = best_indices[0];
  for (int w = 1; w < kThreads / 32; ++w) {
    if (best_values[w] > best || (best_values[w] == best && best_indices[w] < best_index)) {
      best = best_values[w], best_index = best_indices[w];
    }
  }
  float total = 0.0f;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) {
    if (!is_banned(banned, t)) total += __expf(scores[t] - best);
  }
  for (int offset = 16; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffff, total, offset);
  if (lane == 0) reduce[warp] = total;
  __syncthreads();
  if (threadIdx.x == 0) {
    total = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) total += reduce[w];
    const float probability = 1.0f / total;
    history[position + 1] = best_index;
    params.sum_log_probability[image] += -logf(total);
    params.sum_probability[image] += probability;
    params.min_probability[image] = fminf(params.min_probability[image], probability);
    if (best_index == params.eos) params.finished[image] = 1;
  }
}

// (value, token) order: larger value first, then the lower token.
__device__ bool better(float value, int token, float other_value, int other_token) {
  return value > other_value || (value == other_value && token < other_token);
}

__global__ void beam_top_k_kernel(BeamTopKParams params, const float* logits) {
  __shared__ float reduce_values[kThreads / 32];
  __shared__ int reduce_tokens[kThreads / 32], reduce_threads[kThreads / 32];
  __shared__ float shared_total[kThreads / 32];
  extern __shared__ unsigned banned[];
  const int row = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* scores = logits + int64_t(row) * params.vocab;
  const int slot = params.row_slots[row];
  mark_banned_tokens(params.history + int64_t(slot) * params.max_length, params.position.of(row) + 1,
                     params.no_repeat_ngram_size, params.min_length, params.eos, banned, params.vocab);
  // log_softmax over the raw logits, as HF computes it before the processors.
  float largest = -INFINITY;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) largest = fmaxf(largest, scores[t]);
  for (int o = 16; o > 0; o /= 2) largest = fmaxf(largest, __shfl_xor_sync(0xffffffff, largest, o));
  if (lane == 0) reduce_values[warp] = largest;
  __syncthreads();
  largest = reduce_values[0];
  for (int w = 1; w < kThreads / 32; ++w) largest = fmaxf(largest, reduce_values[w]);
  float total = 0.0f;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) total += expf(scores[t] - largest);
  for (int o = 16; o > 0; o /= 2) total += __shfl_xor_sync(0xffffffff, total, o);
  if (lane == 0) shared_total[warp] = total;
  __syncthreads();
  total = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) total += shared_total[w];
  const float log_total = logf(total);
  const float running = params.running[slot];
  // Each thread keeps its own sorted top-k of the tokens it visits.
  float values[kMaxBeamTopK];
  int tokens[kMaxBeamTopK];
  for (int i = 0; i < params.k; ++i) values[i] = -INFINITY, tokens[i] = INT_MAX;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) {
    const float value = is_banned(banned, t) ? -INFINITY : ((scores[t] - largest) - log_total) + running;
    if (!better(value, t, values[params.k - 1], tokens[params.k - 1])) continue;
    int i = params.k - 1;
    while (i > 0 && better(value, t, values[i - 1], tokens[i - 1])) {
      values[i] = values[i - 1];
      tokens[i] = tokens[i - 1];
      --i;
    }
    values[i] = value;
    tokens[i] = t;
  }
  // k rounds of a block-wide arg-best over the heads of the per-thread lists.
  int head = 0;
  for (int round = 0; round < params.k; ++round) {
    float value = head < params.k ? values[head] : -INFINITY;
    int token = head < params.k ? tokens[head] : INT_MAX;
    int owner = threadIdx.x;
    for (int o = 16; o > 0; o /= 2) {
      const float other_value = __shfl_xor_sync(0xffffffff, value, o);
      const int other_token = __shfl_xor_sync(0xffffffff, token, o);
      const int other_owner = __shfl_xor_sync(0xffffffff, owner, o);
      if (better(other_value, other_token, value, token)) value = other_value, token = other_token, owner = other_owner;
    }
    if (lane == 0) reduce_values[warp] = value, reduce_tokens[warp] = token, reduce_threads[warp] = owner;
    __syncthreads();
    value = reduce_values[0], token = reduce_tokens[0], owner = reduce_threads[0];
    for (int w = 1; w < kThreads / 32; ++w) {
      if (better(reduce_values[w], reduce_tokens[w], value, token)) {
        value = reduce_values[w], token = reduce_tokens[w], owner = reduce_threads[w];
      }
    }
    if (threadIdx.x == owner) ++head;
    if (threadIdx.x == 0) {
      params.values[int64_t(row) * params.k + round] = value;
      params.tokens[int64_t(row) * params.k + round] = token;
    }
    __syncthreads();
  }
}

__global__ void advance_position_kernel(StepPositions position, int rows, int rows_per_sequence) {
  const int row = (blockIdx.x * blockDim.x + threadIdx.x) * rows_per_sequence;
  start_next_kernel();
  wait_for_previous_kernel();
  if (position.per_row == nullptr && row == 0) *position.values += 1;
  if (position.per_row != nullptr && row < rows) position.values[position.per_row[row]] += 1;
}

__global__ void gather_last_tokens_kernel(const int* history, const int* images, int rows, int max_length,
                                          StepPositions position, int* tokens) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  start_next_kernel();
  wait_for_previous_kernel();
  if (row < rows) tokens[row] = history[static_cast<int64_t>(images[row]) * max_length + position.of(row)];
}

__global__ void start_greedy_lines_kernel(StartLinesParams params) {
  const int i = blockIdx.x;
  const int line = params.lines[i];
  int* history = params.history + static_cast<int64_t>(line) * params.max_length;
  for (int t = threadIdx.x; t < params.max_length; t += blockDim.x) history[t] = t == 0 ? params.start : params.pad;
  if (threadIdx.x == 0) {
    params.finished[line] = 0;
    params.sum_log_probability[line] = 0.0f;
    params.sum_probability[line] = 0.0f;
    params.min_probability[line] = 1.0f;
    params.positions[line] = 0;
  }
}

// Blocks (x: a stretch of positions, y: an image, z: a cache) move each beam's cache to its
// children in place: a thread loads one element of every beam of its image before it stores
// any, so no scratch copy is needed. Units are 16 bytes when the rows allow it.
template <typename Unit, int kMaxGroup>
__global__ void permute_beam_caches_kernel(PermuteCachesParams params, void* const* caches) {
  if (params.stop != nullptr && *params.stop) return;
  const int image = params.images != nullptr ? params.images[int64_t(blockIdx.y) * params.beams] : blockIdx.y;
  const int* parents = params.parents + int64_t(image) * params.beams;
  int parent[kMaxGroup];
  bool identity = true;
#pragma unroll
  for (int j = 0; j < kMaxGroup; ++j) {
    parent[j] = j < params.beams ? parents[j] : j;
    identity = identity && parent[j] == j;
  }
  if (identity) return;
  const int positions =
      params.position.values != nullptr ? params.position.of(blockIdx.y * params.beams) + 1 : params.positions;
  const int64_t units = positions * params.position_bytes / int64_t(sizeof(Unit));
  const int64_t stride = params.slot_bytes / int64_t(sizeof(Unit));
  Unit* base = static_cast<Unit*>(caches[blockIdx.z]) + int64_t(image) * params.beams * stride;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < units; e += int64_t(gridDim.x) * blockDim.x) {
    Unit values[kMaxGroup];
#pragma unroll
    for (int j = 0; j < kMaxGroup; ++j) {
      if (j < params.beams) values[j] = base[parent[j] * stride + e];
    }
#pragma unroll
    for (int j = 0; j < kMaxGroup; ++j) {
      if (j < params.beams) base[j * stride + e] = values[j];
    }
  }
}

}  // namespace

void greedy_select(const GreedyParams& params, const float* logits, cudaStream_t stream) {
  if (params.rows == 0) return;
  launch_dependent(greedy_select_kernel, params.rows, kThreads, banned_bitmap_bytes(params.vocab), stream, params,
                   logits);
}

void beam_top_k(const BeamTopKParams& params, const float* logits, cudaStream_t stream) {
  if (params.rows == 0) return;
  if (params.k > kMaxBeamTopK) fail("beam top-k: k {} > {}", params.k, kMaxBeamTopK);
  beam_top_k_kernel<<<params.rows, kThreads, banned_bitmap_bytes(params.vocab), stream>>>(params, logits);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

void advance_position(const StepPositions& position, int rows, cudaStream_t stream, int rows_per_sequence) {
  const int sequences = (rows + rows_per_sequence - 1) / rows_per_sequence;
  const int threads = position.per_row == nullptr ? 1 : 256;
  const int blocks = position.per_row == nullptr ? 1 : (sequences + 255) / 256;
  if (blocks > 0) {
    launch_dependent(advance_position_kernel, blocks, threads, 0, stream, position, rows, rows_per_sequence);
  }
}

void start_greedy_lines(const StartLinesParams& params, cudaStream_t stream) {
  if (params.count == 0) return;
  start_greedy_lines_kernel<<<params.count, 128, 0, stream>>>(params);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

void gather_last_tokens(const int* history, const int* images, int rows, int max_length,
                        const StepPositions& position, int* tokens, cudaStream_t stream) {
  if (rows == 0) return;
  launch_dependent(gather_last_tokens_kernel, (rows + 255) / 256, 256, 0, stream, history, images, rows, max_length,
                   position, tokens);
}

void permute_beam_caches(const PermuteCachesParams& params, void* const* caches, int cache_count, int images,
                         int max_positions, cudaStream_t stream) {
  if (images == 0 || cache_count == 0 || max_positions == 0) return;
  if (params.beams > kMaxPermutedBeams) {
    fail("CUDA engine: {} beams; beam search on the GPU takes at most {}", params.beams, kMaxPermutedBeams);
  }
  const bool wide = params.position_bytes % 16 == 0 && params.slot_bytes % 16 == 0;
  const int64_t units = int64_t(max_positions) * params.position_bytes / (wide ? 16 : 1);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((units + 255) / 256, 32)), images, cache_count);
  // A thread holds one unit of every beam: registers for the usual few beams.
  const auto kernel = wide ? (params.beams <= kMaxBeams ? permute_beam_caches_kernel<uint4, kMaxBeams>
                                                        : permute_beam_caches_kernel<uint4, kMaxPermutedBeams>)
                           : (params.beams <= kMaxBeams ? permute_beam_caches_kernel<unsigned char, kMaxBeams>
                                                        : permute_beam_caches_kernel<unsigned char, kMaxPermutedBeams>);
  kernel<<<grid, 256, 0, stream>>>(params, caches);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace trocr::cuda

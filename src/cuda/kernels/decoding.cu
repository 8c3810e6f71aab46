// Device-side pieces of decoding: greedy token choice with HF's processors, the step
// position, and beam reordering of KV caches.
#include <climits>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBanned = 256;

__global__ void greedy_select_kernel(GreedyParams params, const float* logits) {
  __shared__ int banned[kMaxBanned];
  __shared__ int banned_count;
  __shared__ float best_values[kThreads / 32];
  __shared__ int best_indices[kThreads / 32];
  __shared__ float reduce[kThreads / 32];
  const int row = blockIdx.x;
  start_next_kernel();
  wait_for_previous_kernel();
  const int position = *params.position;
  const int image = params.images[row];
  int* history = params.history + static_cast<int64_t>(image) * params.max_length;
  if (params.finished[image]) {
    if (threadIdx.x == 0) history[position + 1] = params.pad;
    return;
  }
  const int length = position + 1;  // tokens so far, start token included
  if (threadIdx.x == 0) {
    banned_count = 0;
    const int n = params.no_repeat_ngram_size;
    if (n > 0 && length + 1 >= n) {
      const int prefix = length - (n - 1);
      for (int start = 0; start + n <= length && banned_count < kMaxBanned; ++start) {
        bool same = true;
        for (int i = 0; i < n - 1 && same; ++i) same = history[start + i] == history[prefix + i];
        if (same) banned[banned_count++] = history[start + n - 1];
      }
    }
    if (length < params.min_length && banned_count < kMaxBanned) banned[banned_count++] = params.eos;
  }
  __syncthreads();
  const float* scores = logits + static_cast<int64_t>(row) * params.vocab;
  float best = -INFINITY;
  int best_index = params.vocab;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) {
    bool skip = false;
    for (int b = 0; b < banned_count; ++b) skip = skip || banned[b] == t;
    const float value = skip ? -INFINITY : scores[t];
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
    bool skip = false;
    for (int b = 0; b < banned_count; ++b) skip = skip || banned[b] == t;
    if (!skip) total += __expf(scores[t] - best);
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
  const int row = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* scores = logits + int64_t(row) * params.vocab;
  const int* banned = params.banned + int64_t(row) * params.max_banned;
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
  const float running = params.running[row];
  // Each thread keeps its own sorted top-k of the tokens it visits.
  float values[kMaxBeamTopK];
  int tokens[kMaxBeamTopK];
  for (int i = 0; i < params.k; ++i) values[i] = -INFINITY, tokens[i] = INT_MAX;
  for (int t = threadIdx.x; t < params.vocab; t += blockDim.x) {
    bool skip = false;
    for (int b = 0; b < params.max_banned; ++b) skip = skip || banned[b] == t;
    const float value = skip ? -INFINITY : ((scores[t] - largest) - log_total) + running;
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

__global__ void advance_position_kernel(int* position) {
  start_next_kernel();
  wait_for_previous_kernel();
  *position += 1;
}

__global__ void gather_last_tokens_kernel(const int* history, const int* images, int rows, int max_length,
                                          const int* position, int* tokens) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  start_next_kernel();
  wait_for_previous_kernel();
  if (row < rows) tokens[row] = history[static_cast<int64_t>(images[row]) * max_length + *position];
}

// Copies row i of a slot table to row i of another (blockIdx.y: i; blockIdx.z: the cache).
// Tables are either the caches (a slot per row, through slots) or the scratch (dense).
template <typename T>
__global__ void copy_slots_kernel(T* const* caches, int64_t slot_stride, const int* slots, T* scratch,
                                  int64_t length_elements, bool to_scratch) {
  const int i = blockIdx.y, cache = blockIdx.z;
  T* slot = caches[cache] + slots[i] * slot_stride;
  T* dense = scratch + (int64_t(cache) * gridDim.y + i) * length_elements;
  const T* source = to_scratch ? slot : dense;
  T* target = to_scratch ? dense : slot;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < length_elements;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    target[e] = source[e];
  }
}

}  // namespace

void greedy_select(const GreedyParams& params, const float* logits, cudaStream_t stream) {
  if (params.rows == 0) return;
  launch_dependent(greedy_select_kernel, params.rows, kThreads, 0, stream, params, logits);
}

void beam_top_k(const BeamTopKParams& params, const float* logits, cudaStream_t stream) {
  if (params.rows == 0) return;
  if (params.k > kMaxBeamTopK) fail("beam top-k: k {} > {}", params.k, kMaxBeamTopK);
  beam_top_k_kernel<<<params.rows, kThreads, 0, stream>>>(params, logits);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

void advance_position(int* position, cudaStream_t stream) {
  launch_dependent(advance_position_kernel, 1, 1, 0, stream, position);
}

void gather_last_tokens(const int* history, const int* images, int rows, int max_length, const int* position,
                        int* tokens, cudaStream_t stream) {
  if (rows == 0) return;
  launch_dependent(gather_last_tokens_kernel, (rows + 255) / 256, 256, 0, stream, history, images, rows, max_length,
                   position, tokens);
}

template <typename T>
void reorder_caches(T* const* caches, int cache_count, int64_t slot_stride, const int* targets, const int* sources,
                    int count, int64_t length_elements, T* scratch, cudaStream_t stream) {
  if (count == 0 || length_elements == 0 || cache_count == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((length_elements + 255) / 256, 64));
  const dim3 grid(blocks, count, cache_count);
  copy_slots_kernel<T><<<grid, 256, 0, stream>>>(caches, slot_stride, sources, scratch, length_elements, true);
  copy_slots_kernel<T><<<grid, 256, 0, stream>>>(caches, slot_stride, targets, scratch, length_elements, false);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

#define INSTANTIATE(T)                                                                                     \
  template void reorder_caches<T>(T* const*, int, int64_t, const int*, const int*, int, int64_t, T*, \
                                  cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

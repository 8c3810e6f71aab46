// y[m, n] = activation(x[m, :] . w[n, :] + bias[n]) for m <= kMaxRows: the decode steps of small
// batches, where the product is a pass over the weights. One warp per output column streams its
// weight row with 16-byte loads (unrolled, so that several are in flight: at batch 1 the pass
// is bound by memory latency, not bandwidth) and serves every row of x; fp32 accumulation.
// With a NormedInput, x is LayerNorm(residual + delta), computed by every block into shared
// memory (a warp per row, the row in registers), which saves the decoder step a LayerNorm
// launch before each of its sublayers.
#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

static_assert(kWarps >= kMaxSmallRows, "a warp per normalized row");

// Row `warp` of the normalized input into staged (and, from block 0, into input.normed).
template <typename T>
__device__ void stage_normed_row(const NormedInput<T>& input, int k, T* staged) {
  constexpr int kVector = 16 / sizeof(T);
  constexpr int kPieces = kMaxNormedWidth / 32 / kVector;  // 16-byte pieces per lane
  const int row = threadIdx.x / 32, lane = threadIdx.x % 32;
  float values[kPieces][kVector];
  float sum = 0.0f;
#pragma unroll
  for (int p = 0; p < kPieces; ++p) {
    const int base = (lane + 32 * p) * kVector;
    if (base >= k) break;
    const uint4 a = *reinterpret_cast<const uint4*>(input.residual + int64_t(row) * k + base);
    const uint4 b = *reinterpret_cast<const uint4*>(input.delta + int64_t(row) * k + base);
#pragma unroll
    for (int v = 0; v < kVector; ++v) {
      values[p][v] = to_float(reinterpret_cast<const T*>(&a)[v]) + to_float(reinterpret_cast<const T*>(&b)[v]);
      sum += values[p][v];
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
  const float mean = sum / k;
  float squares = 0.0f;
#pragma unroll
  for (int p = 0; p < kPieces; ++p) {
    if ((lane + 32 * p) * kVector >= k) break;
#pragma unroll
    for (int v = 0; v < kVector; ++v) squares += (values[p][v] - mean) * (values[p][v] - mean);
  }
  for (int offset = 16; offset > 0; offset /= 2) squares += __shfl_xor_sync(0xffffffff, squares, offset);
  const float inverse = rsqrtf(squares / k + input.eps);
#pragma unroll
  for (int p = 0; p < kPieces; ++p) {
    const int base = (lane + 32 * p) * kVector;
    if (base >= k) break;
    uint4 packed;
    T* normed = reinterpret_cast<T*>(&packed);
#pragma unroll
    for (int v = 0; v < kVector; ++v) {
      normed[v] = from_float<T>((values[p][v] - mean) * inverse * input.gamma[base + v] + input.beta[base + v]);
    }
    *reinterpret_cast<uint4*>(staged + row * k + base) = packed;
    if (blockIdx.x == 0) *reinterpret_cast<uint4*>(input.normed + int64_t(row) * k + base) = packed;
  }
}

template <typename T, typename TOut>
__global__ void small_linear_kernel(const T* x, NormedInput<T> input, const T* w, const TOut* bias, TOut* y, int m,
                                    int n, int k, bool activated, Activation activation) {
  extern __shared__ __align__(16) unsigned char raw[];
  constexpr int kVector = 16 / sizeof(T);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int column = blockIdx.x * kWarps + warp;
  const bool active = column < n;
  start_next_kernel();
  // The weights do not depend on the previous kernel: the first pieces of the row go to
  // registers, and the rest towards L2 (a 128-byte line per prefetch), while it finishes.
  const T* weight = w + int64_t(active ? column : 0) * k;
  constexpr int kEarly = 4;
  constexpr int kLine = 128 / sizeof(T);
  uint4 early[kEarly];
#pragma unroll
  for (int i = 0; i < kEarly; ++i) {
    const int base = (lane + 32 * i) * kVector;
    if (active && base < k) early[i] = *reinterpret_cast<const uint4*>(weight + base);
  }
  for (int base = 32 * kEarly * kVector + lane * kLine; active && base < k; base += 32 * kLine) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(weight + base));
  }
  wait_for_previous_kernel();
  if (input.residual != nullptr) {  // every warp stays for this, columns or not
    if (warp < m) stage_normed_row(input, k, reinterpret_cast<T*>(raw));
    __syncthreads();
    x = reinterpret_cast<const T*>(raw);
  }
  if (!active) return;

  float accumulators[kMaxSmallRows];
#pragma unroll
  for (int r = 0; r < kMaxSmallRows; ++r) accumulators[r] = 0.0f;
  const auto accumulate = [&](const uint4& packed, int base) {
    const T* weights = reinterpret_cast<const T*>(&packed);
#pragma unroll
    for (int r = 0; r < kMaxSmallRows; ++r) {
      if (r < m) {
        const uint4 input_packed = *reinterpret_cast<const uint4*>(x + int64_t(r) * k + base);
        const T* inputs = reinterpret_cast<const T*>(&input_packed);
#pragma unroll
        for (int v = 0; v < kVector; ++v) accumulators[r] += to_float(weights[v]) * to_float(inputs[v]);
      }
    }
  };
#pragma unroll
  for (int i = 0; i < kEarly; ++i) {
    const int base = (lane + 32 * i) * kVector;
    if (base < k) accumulate(early[i], base);
  }
#pragma unroll 4
  for (int base = (lane + 32 * kEarly) * kVector; base < k; base += 32 * kVector) {
    accumulate(*reinterpret_cast<const uint4*>(weight + base), base);
  }
#pragma unroll
  for (int r = 0; r < kMaxSmallRows; ++r) {
    if (r >= m) break;
    float sum = accumulators[r];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    if (lane == 0) {
      if (bias != nullptr) sum += to_float(bias[column]);
      if (activated) sum = activate(sum, activation);
      y[int64_t(r) * n + column] = from_float<TOut>(sum);
    }
  }
}

template <typename T, typename TOut>
bool launch_small_linear(const T* x, const NormedInput<T>& input, const T* w, const TOut* bias, TOut* y, int m, int n,
                         int k, std::optional<Activation> activation, cudaStream_t stream) {
  constexpr int kVector = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (m < 1 || m > kMaxSmallRows || k % kVector != 0 || !aligned(w)) return false;
  size_t shared_bytes = 0;
  if (input.residual != nullptr) {
    if (k > kMaxNormedWidth || !aligned(input.residual) || !aligned(input.delta) || !aligned(input.normed)) return false;
    shared_bytes = size_t(m) * k * sizeof(T);
  } else if (!aligned(x)) {
    return false;
  }
  launch_dependent(small_linear_kernel<T, TOut>, (n + kWarps - 1) / kWarps, kThreads, shared_bytes, stream, x, input,
                   w, bias, y, m, n, k, activation.has_value(), activation.value_or(Activation::Relu));
  return true;
}

}  // namespace

template <typename T, typename TOut>
bool small_linear(const T* x, const T* w, const TOut* bias, TOut* y, int m, int n, int k,
                  std::optional<Activation> activation, cudaStream_t stream) {
  return launch_small_linear<T, TOut>(x, NormedInput<T>{}, w, bias, y, m, n, k, activation, stream);
}

template <typename T, typename TOut>
bool small_linear_normed(const NormedInput<T>& input, const T* w, const TOut* bias, TOut* y, int m, int n, int k,
                         std::optional<Activation> activation, cudaStream_t stream) {
  return launch_small_linear<T, TOut>(nullptr, input, w, bias, y, m, n, k, activation, stream);
}

#define INSTANTIATE(T, TOut)                                                                                   \
  template bool small_linear_normed<T, TOut>(const NormedInput<T>&, const T*, const TOut*, TOut*, int, int, int, \
                                             std::optional<Activation>, cudaStream_t);                          \
  template bool small_linear<T, TOut>(const T*, const T*, const TOut*, TOut*, int, int, int, std::optional<Activation>, \
                                     cudaStream_t);
INSTANTIATE(float, float)
INSTANTIATE(__half, __half)
INSTANTIATE(__half, float)
INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
INSTANTIATE(__nv_bfloat16, float)
#undef INSTANTIATE

}  // namespace trocr::cuda

// y[m, n] = activation(x[m, :] . w[n, :] + bias[n]) for m <= kMaxRows: the decode steps of small
// batches, where the product is a pass over the weights. One warp per output column streams its
// weight row with 16-byte loads (unrolled, so that several are in flight: at batch 1 the pass
// is bound by memory latency, not bandwidth) and serves every row of x; fp32 accumulation.
// With a NormedInput, x is LayerNorm(residual + delta), computed by every block into shared
// memory (a warp per row, the row in registers), which saves the decoder step a LayerNorm
// launch before each of its sublayers.
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/mma_fragments.cuh"
#include "cuda/kernels/row_norm.cuh"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

static_assert(kWarps >= kMaxSmallRows, "a warp per normalized row");

// Row `warp` of the normalized input into staged (and, from block 0, into input.normed).
template <typename T>
__device__ void stage_normed_row(const NormedInput<T>& input, int k, T* staged, int stride) {
  constexpr int kPieces = kMaxNormedWidth / 32 / kRowVector<T>;
  const int row = threadIdx.x / 32, lane = threadIdx.x % 32;
  RowStatistics<T, kPieces> statistics;
  statistics.load(input.residual + int64_t(row) * k, input.delta + int64_t(row) * k, k, input.eps, lane);
#pragma unroll
  for (int p = 0; p < kPieces; ++p) {
    if (!statistics.inside(p, k, lane)) break;
    const int base = (lane + 32 * p) * kRowVector<T>;
    const uint4 packed = statistics.piece(p, lane, true, input.gamma, input.beta);
    *reinterpret_cast<uint4*>(staged + row * stride + base) = packed;
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
    if (warp < m) stage_normed_row(input, k, reinterpret_cast<T*>(raw), k);
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

// The same product on tensor cores, for 16-bit T: at 2-8 rows the kernel above spends more on
// conversions and FMAs than on streaming the weights. A block owns 8 columns, and its 8 warps
// split k in chunks of 32. In each chunk, lane 4g + t loads 16 bytes of weight column g and 16
// bytes of input row g, both at k offset 8t. Two m16n8k16 products take the rows as A's rows
// (the second half zero) and the columns as B's. The k order inside a chunk is permuted
// identically for both operands, so the sum is the dot product.
template <typename T, typename TOut>
__global__ void __launch_bounds__(kThreads)
    small_linear_mma_kernel(const T* x, NormedInput<T> input, const T* w, const TOut* bias, TOut* y, int m, int n,
                            int k, bool activated, Activation activation) {
  extern __shared__ __align__(16) unsigned char raw[];
  __shared__ float partial[kWarps][kMaxSmallRows][8];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pair = lane % 4;
  const int first_column = blockIdx.x * 8;
  const bool column_inside = first_column + group < n;
  const T* weight = w + int64_t(column_inside ? first_column + group : 0) * k;
  const int chunks = (k + 31) / 32;
  const auto load_weights = [&](int chunk) {
    const int base = 32 * chunk + 8 * pair;
    return column_inside && base < k ? *reinterpret_cast<const uint4*>(weight + base) : make_uint4(0, 0, 0, 0);
  };
  start_next_kernel();
  // The weights do not depend on the previous kernel: the first chunks go to registers and
  // the rest towards L2 while it finishes.
  constexpr int kEarly = 4;
  uint4 early[kEarly];
#pragma unroll
  for (int i = 0; i < kEarly; ++i) early[i] = load_weights(warp + kWarps * i);
  if (pair == 0 && column_inside) {
    for (int chunk = warp + kWarps * kEarly; chunk < chunks; chunk += kWarps) {
      asm volatile("prefetch.global.L2 [%0];" ::"l"(weight + 32 * chunk));
    }
  }
  wait_for_previous_kernel();
  const T* rows = x;
  int64_t row_stride = k;
  if (input.residual != nullptr) {
    const int stride = k + 8;  // 16 bytes of padding: the 8 rows' reads spread over the banks
    if (warp < m) stage_normed_row(input, k, reinterpret_cast<T*>(raw), stride);
    __syncthreads();
    rows = reinterpret_cast<const T*>(raw);
    row_stride = stride;
  }
  float accumulators[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const auto multiply = [&](const uint4& weights, int chunk) {
    const int base = 32 * chunk + 8 * pair;
    uint4 inputs = make_uint4(0, 0, 0, 0);
    if (group < m && base < k) inputs = *reinterpret_cast<const uint4*>(rows + group * row_stride + base);
    const uint32_t first[4] = {inputs.x, 0u, inputs.y, 0u}, second[4] = {inputs.z, 0u, inputs.w, 0u};
    mma<T>(accumulators, first, weights.x, weights.y);
    mma<T>(accumulators, second, weights.z, weights.w);
  };
#pragma unroll
  for (int i = 0; i < kEarly; ++i) {
    if (warp + kWarps * i < chunks) multiply(early[i], warp + kWarps * i);
  }
#pragma unroll 4
  for (int chunk = warp + kWarps * kEarly; chunk < chunks; chunk += kWarps) multiply(load_weights(chunk), chunk);
  // Lane 4g + t holds row g, columns 2t and 2t + 1 of this warp's share of the sums.
  if (group < kMaxSmallRows) {
    partial[warp][group][2 * pair] = accumulators[0];
    partial[warp][group][2 * pair + 1] = accumulators[1];
  }
  __syncthreads();
  if (threadIdx.x < kMaxSmallRows * 8) {
    const int row = threadIdx.x / 8, column = first_column + threadIdx.x % 8;
    if (row < m && column < n) {
      float sum = 0.0f;
      for (int w = 0; w < kWarps; ++w) sum += partial[w][row][threadIdx.x % 8];
      if (bias != nullptr) sum += to_float(bias[column]);
      if (activated) sum = activate(sum, activation);
      y[int64_t(row) * n + column] = from_float<TOut>(sum);
    }
  }
}

template <typename T, typename TOut>
bool launch_small_linear(const T* x, const NormedInput<T>& input, const T* w, const TOut* bias, TOut* y, int m, int n,
                         int k, std::optional<Activation> activation, cudaStream_t stream) {
  constexpr int kVector = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (m < 1 || m > kMaxSmallRows || k % kVector != 0 || !aligned(w)) return false;
  const bool tensor_cores = use_tensor_core_small_linear(DataType<T>::dtype);
  size_t shared_bytes = 0;
  if (input.residual != nullptr) {
    if (k > kMaxNormedWidth || !aligned(input.residual) || !aligned(input.delta) || !aligned(input.normed)) return false;
    shared_bytes = size_t(m) * (tensor_cores ? k + 8 : k) * sizeof(T);
  } else if (!aligned(x)) {
    return false;
  }
  if constexpr (!std::is_same_v<T, float>) {
    if (tensor_cores) {
      launch_dependent(small_linear_mma_kernel<T, TOut>, (n + 7) / 8, kThreads, shared_bytes, stream, x, input, w,
                       bias, y, m, n, k, activation.has_value(), activation.value_or(Activation::Relu));
      return true;
    }
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

// y[m, n] = x[m, :] . w[n, :] (+ bias[n], optionally relu) for m <= kMaxRows: the decode steps
// of small batches, where the product is a pass over the weights. One warp per output column
// streams its weight row with 16-byte loads and serves every row of x; fp32 accumulation.
#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <typename T, typename TOut>
__global__ void small_linear_kernel(const T* x, const T* w, const TOut* bias, TOut* y, int m, int n,
                                    int k, bool relu) {
  constexpr int kVector = 16 / sizeof(T);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int column = blockIdx.x * kWarps + warp;
  if (column >= n) return;
  float accumulators[kMaxSmallRows];
#pragma unroll
  for (int r = 0; r < kMaxSmallRows; ++r) accumulators[r] = 0.0f;
  const T* weight = w + int64_t(column) * k;
  for (int base = lane * kVector; base < k; base += 32 * kVector) {
    const uint4 packed = *reinterpret_cast<const uint4*>(weight + base);
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
  }
#pragma unroll
  for (int r = 0; r < kMaxSmallRows; ++r) {
    if (r >= m) break;
    float sum = accumulators[r];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    if (lane == 0) {
      if (bias != nullptr) sum += to_float(bias[column]);
      if (relu) sum = fmaxf(sum, 0.0f);
      y[int64_t(r) * n + column] = from_float<TOut>(sum);
    }
  }
}

}  // namespace

template <typename T, typename TOut>
bool small_linear(const T* x, const T* w, const TOut* bias, TOut* y, int m, int n, int k, bool relu,
                  cudaStream_t stream) {
  constexpr int kVector = 16 / sizeof(T);
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
  if (m < 1 || m > kMaxSmallRows || k % kVector != 0 || !aligned) return false;
  small_linear_kernel<T, TOut><<<(n + kWarps - 1) / kWarps, kThreads, 0, stream>>>(x, w, bias, y, m, n, k, relu);
  TROCR_CUDA_CHECK(cudaGetLastError());
  return true;
}

#define INSTANTIATE(T, TOut) \
  template bool small_linear<T, TOut>(const T*, const T*, const TOut*, TOut*, int, int, int, bool, cudaStream_t);
INSTANTIATE(float, float)
INSTANTIATE(__half, __half)
INSTANTIATE(__half, float)
INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
INSTANTIATE(__nv_bfloat16, float)
#undef INSTANTIATE

}  // namespace trocr::cuda

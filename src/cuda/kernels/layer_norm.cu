#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/block_reduce.cuh"
#include "cuda/kernels/dependent_launch.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;


// One block per row; the row is kept in shared memory in fp32 between the two passes.
template <typename T>
__global__ void residual_layer_norm_kernel(T* residual, const T* delta, T* normed,
                                           const float* gamma, const float* beta, int width,
                                           float eps, bool store_sum) {
  extern __shared__ float row[];
  __shared__ float partial[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * width;
  start_next_kernel();
  wait_for_previous_kernel();
  float sum = 0.0f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    float value = to_float(residual[offset + i]);
    if (delta != nullptr) value += to_float(delta[offset + i]);
    row[i] = value;
    sum += value;
  }
  const float mean = block_sum(sum, partial) / width;
  float squares = 0.0f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float centered = row[i] - mean;
    squares += centered * centered;
  }
  const float inverse = rsqrtf(block_sum(squares, partial) / width + eps);
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    if (store_sum) residual[offset + i] = from_float<T>(row[i]);
    normed[offset + i] = from_float<T>((row[i] - mean) * inverse * gamma[i] + beta[i]);
  }
}

}  // namespace

template <typename T>
void residual_layer_norm(T* residual, const T* delta, T* normed, const float* gamma,
                         const float* beta, int rows, int width, float eps, bool store_sum,
                         cudaStream_t stream) {
  if (rows == 0) return;
  launch_dependent(residual_layer_norm_kernel<T>, rows, kThreads, width * sizeof(float), stream, residual, delta,
                   normed, gamma, beta, width, eps, store_sum);
}

#define INSTANTIATE(T)                                                                       \
  template void residual_layer_norm<T>(T*, const T*, T*, const float*, const float*, int, int, \
                                       float, bool, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

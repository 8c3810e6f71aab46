#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

template <typename T>
__global__ void activation_kernel(T* values, int64_t count, Activation activation) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    values[i] = from_float<T>(activate(to_float(values[i]), activation));
  }
}

}  // namespace

template <typename T>
void apply_activation(T* values, int64_t count, Activation activation, cudaStream_t stream) {
  if (count == 0) return;
  const int64_t blocks = std::min<int64_t>((count + 255) / 256, 65535);
  activation_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(values, count, activation);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

template void apply_activation<float>(float*, int64_t, Activation, cudaStream_t);
template void apply_activation<__half>(__half*, int64_t, Activation, cudaStream_t);
template void apply_activation<__nv_bfloat16>(__nv_bfloat16*, int64_t, Activation, cudaStream_t);

}  // namespace trocr::cuda

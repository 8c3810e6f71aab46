#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/convert_kernels.h"
#include "cuda/cuda_check.h"

namespace trocr {
namespace {

__global__ void float_to_half_kernel(const float* source, __half* destination, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    destination[i] = __float2half_rn(source[i]);
  }
}

__global__ void float_to_bfloat16_kernel(const float* source, __nv_bfloat16* destination,
                                         size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    destination[i] = __float2bfloat16_rn(source[i]);
  }
}

unsigned grid_for(size_t count) {
  const size_t blocks = (count + 255) / 256;
  return static_cast<unsigned>(blocks < 4096 ? (blocks == 0 ? 1 : blocks) : 4096);
}

}  // namespace

void convert_float_to_half(const float* source, uint16_t* destination, size_t count,
                           cudaStream_t stream) {
  float_to_half_kernel<<<grid_for(count), 256, 0, stream>>>(
      source, reinterpret_cast<__half*>(destination), count);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

void convert_float_to_bfloat16(const float* source, uint16_t* destination, size_t count,
                               cudaStream_t stream) {
  float_to_bfloat16_kernel<<<grid_for(count), 256, 0, stream>>>(
      source, reinterpret_cast<__nv_bfloat16*>(destination), count);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace trocr

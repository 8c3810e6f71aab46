#pragma once
// The element types the CUDA engine computes in, and their CUDA library names.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/dtype.h"

namespace trocr::cuda {

template <typename T> struct DataType;
template <> struct DataType<float> {
  static constexpr cudaDataType_t value = CUDA_R_32F;
  static constexpr DType dtype = DType::F32;
};
template <> struct DataType<__half> {
  static constexpr cudaDataType_t value = CUDA_R_16F;
  static constexpr DType dtype = DType::F16;
};
template <> struct DataType<__nv_bfloat16> {
  static constexpr cudaDataType_t value = CUDA_R_16BF;
  static constexpr DType dtype = DType::BF16;
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

}  // namespace trocr::cuda

#pragma once
// Block-wide sum for the row kernels (LayerNorm, embedding). `shared` holds one float per
// warp; every thread gets the total. Contains barriers: call it from all threads.
namespace trocr::cuda {

__device__ inline float block_sum(float value, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = value;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < blockDim.x / 32; ++w) total += shared[w];
  __syncthreads();
  return total;
}

}  // namespace trocr::cuda

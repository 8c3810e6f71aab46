#pragma once
// Programmatic dependent launch (Hopper; a plain launch before sm_90) for the kernels of a decode step. At batch 1 a step is
// ~150 small kernels, and the gaps between them (launch, then the first loads' latency) cost
// more than their work. A kernel launched with launch_dependent may start while the previous
// kernel of its stream still runs:
// - it calls start_next_kernel() first, so that the kernel after it is launched early too;
// - it calls wait_for_previous_kernel() before it reads anything an earlier kernel wrote, or
//   writes anything an earlier kernel reads; what it does before that (issuing the loads of its
//   weights) overlaps the previous kernel.
// Kernels launched the usual way (cuBLASLt's) wait for their predecessors in full, as always.
#include <cuda_runtime.h>

#include <utility>

#include "cuda/cuda_check.h"
#include "cuda/kernel_choice.h"

namespace trocr::cuda {

__device__ __forceinline__ void start_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                      Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = use_dependent_launch() ? 1 : 0;  // sm_90 and newer
  TROCR_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace trocr::cuda

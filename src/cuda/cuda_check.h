#pragma once
// Turns CUDA runtime failures into trocr::Error with the call site.
#include <cuda_runtime.h>

#include "common/check.h"

#define TROCR_CUDA_CHECK(call)                                                          \
  do {                                                                                  \
    const cudaError_t trocr_status_ = (call);                                           \
    if (trocr_status_ != cudaSuccess) {                                                 \
      ::trocr::fail("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(trocr_status_), \
                    cudaGetErrorString(trocr_status_), #call, __FILE__, __LINE__);      \
    }                                                                                   \
  } while (0)

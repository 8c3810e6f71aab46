#pragma once
// Weight conversion on the device: fp32 checkpoints become fp16/bf16 engine weights.
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace trocr {

// Round-to-nearest-even, as PyTorch's .half() and .bfloat16(). Buffers are device pointers.
void convert_float_to_half(const float* source, uint16_t* destination, size_t count,
                           cudaStream_t stream);
void convert_float_to_bfloat16(const float* source, uint16_t* destination, size_t count,
                               cudaStream_t stream);

}  // namespace trocr

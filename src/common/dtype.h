#pragma once
// Element types that checkpoints store, and conversions of the float ones to fp32.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace trocr {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
bool is_floating(DType dtype);

// IEEE binary16 and bfloat16, bit patterns to float (exact). bfloat16's is inline: the CPU
// engine's vector loops widen bf16 weights with it.
float half_to_float(uint16_t bits);
inline float bfloat16_to_float(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}
// Round to nearest even, as PyTorch's .half() and .bfloat16() do.
uint16_t float_to_half(float value);
uint16_t float_to_bfloat16(float value);

// Converts `count` little-endian elements of a floating dtype to fp32.
void convert_to_float32(DType dtype, const void* source, size_t count, float* destination);

}  // namespace trocr

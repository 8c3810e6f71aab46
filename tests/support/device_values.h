#pragma once
// Host values and their device copies in the kernels' element types, for the kernel tests:
// random inputs, rounded to T as the kernel sees them, and tolerances per type.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "common/dtype.h"
#include "cuda/device_buffer.h"

namespace trocr::test {

using cuda::DeviceBuffer;

inline std::vector<float> random_values(size_t count, std::mt19937& generator, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (auto& v : values) v = normal(generator);
  return values;
}

// Host values rounded to T's precision (what the kernel sees), and device copies.
template <typename T>
std::vector<float> rounded(const std::vector<float>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, float>) out[i] = values[i];
    if constexpr (std::is_same_v<T, __half>) out[i] = half_to_float(float_to_half(values[i]));
    if constexpr (std::is_same_v<T, __nv_bfloat16>) out[i] = bfloat16_to_float(float_to_bfloat16(values[i]));
  }
  return out;
}

template <typename T>
DeviceBuffer<T> to_device(const std::vector<float>& values) {
  std::vector<T> converted(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, float>) {
      converted[i] = values[i];
    } else {
      const uint16_t bits = std::is_same_v<T, __half> ? float_to_half(values[i]) : float_to_bfloat16(values[i]);
      std::memcpy(static_cast<void*>(&converted[i]), &bits, 2);
    }
  }
  DeviceBuffer<T> buffer;
  buffer.upload(converted);
  return buffer;
}

template <typename T>
std::vector<float> to_host(const DeviceBuffer<T>& buffer) {
  const std::vector<T> values = buffer.download();
  std::vector<float> out(values.size());
  if constexpr (std::is_same_v<T, float>) {
    out = values;
  } else {
    convert_to_float32(std::is_same_v<T, __half> ? DType::F16 : DType::BF16, values.data(), values.size(), out.data());
  }
  return out;
}

template <typename T>
double tolerance() {
  if constexpr (std::is_same_v<T, float>) return 1e-5;
  if constexpr (std::is_same_v<T, __half>) return 4e-3;
  return 3e-2;
}

}  // namespace trocr::test

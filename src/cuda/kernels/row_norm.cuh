#pragma once
// LayerNorm statistics of one row by one warp, the row held in registers: each lane loads
// Pieces 16-byte pieces of residual (+ delta), so a row is read once and never touches shared
// memory or a block barrier. Used by the LayerNorm kernel and by small_linear's normalized input.
#include <cstdint>

#include "cuda/dtype_traits.h"

namespace trocr::cuda {

template <typename T>
constexpr int kRowVector = 16 / sizeof(T);  // elements per 16-byte piece

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
  return value;
}

// Lane `lane` holds elements (lane + 32 p) * kRowVector<T> + [0, kRowVector<T>) of the row in
// values[p] (pieces at or past width are left unset). Needs width % kRowVector<T> == 0 and
// 16-byte-aligned rows; delta may be null. Returns the mean and 1 / sqrt(variance + eps), the
// variance from the centered values (as the CPU and HF compute it), all in fp32.
template <typename T, int Pieces>
struct RowStatistics {
  float values[Pieces][kRowVector<T>];
  float mean;
  float inverse;

  __device__ __forceinline__ static bool inside(int p, int width, int lane) {
    return (lane + 32 * p) * kRowVector<T> < width;
  }

  __device__ __forceinline__ void load(const T* residual, const T* delta, int width, float eps, int lane) {
    constexpr int kVector = kRowVector<T>;
    float sum = 0.0f;
#pragma unroll
    for (int p = 0; p < Pieces; ++p) {
      if (!inside(p, width, lane)) break;
      const int base = (lane + 32 * p) * kVector;
      const uint4 a = *reinterpret_cast<const uint4*>(residual + base);
      uint4 b = make_uint4(0, 0, 0, 0);  // all-zero bits are 0.0 in every T
      if (delta != nullptr) b = *reinterpret_cast<const uint4*>(delta + base);
#pragma unroll
      for (int v = 0; v < kVector; ++v) {
        values[p][v] = to_float(reinterpret_cast<const T*>(&a)[v]) + to_float(reinterpret_cast<const T*>(&b)[v]);
        sum += values[p][v];
      }
    }
    mean = warp_sum(sum) / width;
    float squares = 0.0f;
#pragma unroll
    for (int p = 0; p < Pieces; ++p) {
      if (!inside(p, width, lane)) break;
#pragma unroll
      for (int v = 0; v < kVector; ++v) squares += (values[p][v] - mean) * (values[p][v] - mean);
    }
    inverse = rsqrtf(warp_sum(squares) / width + eps);
  }

  // Piece p of the row as T: the sum itself (normalize false) or its LayerNorm.
  __device__ __forceinline__ uint4 piece(int p, int lane, bool normalize, const float* gamma, const float* beta) const {
    constexpr int kVector = kRowVector<T>;
    const int base = (lane + 32 * p) * kVector;
    uint4 packed;
    T* out = reinterpret_cast<T*>(&packed);
#pragma unroll
    for (int v = 0; v < kVector; ++v) {
      out[v] = from_float<T>(normalize ? (values[p][v] - mean) * inverse * gamma[base + v] + beta[base + v]
                                       : values[p][v]);
    }
    return packed;
  }
};

}  // namespace trocr::cuda

// Rows to E4M3 with a scale each (kernels.h: quantize_rows).
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "common/check.h"
#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kPieceElements = 8;  // 16 bytes of fp16 in, 8 bytes of E4M3 out
constexpr float kE4M3Max = 448.0f;

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffff, value, offset));
  return value;
}

// A warp per row, the row held in registers as loaded (Pieces pieces of 8 per lane: rows up to
// 256 * Pieces wide), so that it is read once; the activation is computed in both passes (cheaper
// than holding fp32 values: 158 registers that way, and a third of the occupancy).
template <typename T, int Pieces>
__global__ void quantize_rows_kernel(const T* x, int64_t rows, int width, bool activate_first, Activation activation,
                                     __nv_fp8_e4m3* values, float* scales) {
  struct alignas(sizeof(T) * kPieceElements) Piece {
    T elements[kPieceElements];
  };
  const int lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (row >= rows) return;
  const Piece* in = reinterpret_cast<const Piece*>(x + row * width);
  const auto value = [&](const Piece& piece, int e) {
    const float loaded = to_float(piece.elements[e]);
    return activate_first ? activate(loaded, activation) : loaded;
  };
  Piece held[Pieces];
  float largest = 0.0f;
#pragma unroll
  for (int p = 0; p < Pieces; ++p) {
    const int piece = lane + 32 * p;
    if (piece * kPieceElements >= width) break;
    held[p] = in[piece];
#pragma unroll
    for (int e = 0; e < kPieceElements; ++e) largest = fmaxf(largest, fabsf(value(held[p], e)));
  }
  largest = warp_max(largest);
  // An all-zero row keeps scale 1: its values quantize to zeros either way.
  const float scale = largest > 0.0f ? largest / kE4M3Max : 1.0f;
  const float inverse = largest > 0.0f ? kE4M3Max / largest : 1.0f;
  uint2* out = reinterpret_cast<uint2*>(values + row * width);
#pragma unroll
  for (int p = 0; p < Pieces; ++p) {
    const int piece = lane + 32 * p;
    if (piece * kPieceElements >= width) break;
    uint2 packed;
    __nv_fp8x2_storage_t* pairs = reinterpret_cast<__nv_fp8x2_storage_t*>(&packed);
#pragma unroll
    for (int e = 0; e < kPieceElements; e += 2) {
      pairs[e / 2] = __nv_cvt_float2_to_fp8x2(make_float2(value(held[p], e) * inverse, value(held[p], e + 1) * inverse),
                                              __NV_SATFINITE, __NV_E4M3);
    }
    out[piece] = packed;
  }
  if (lane == 0) scales[row] = scale;
}

template <typename T, int Pieces>
void launch(const T* x, int64_t rows, int width, std::optional<Activation> activation, __nv_fp8_e4m3* values,
            float* scales, cudaStream_t stream) {
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  quantize_rows_kernel<T, Pieces><<<unsigned(blocks), 32 * kWarps, 0, stream>>>(
      x, rows, width, activation.has_value(), activation.value_or(Activation::Relu), values, scales);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <typename T>
void quantize_rows(const T* x, int64_t rows, int width, std::optional<Activation> activation,
                   __nv_fp8_e4m3* values, float* scales, cudaStream_t stream) {
  if (rows == 0) return;
  if (width % kPieceElements != 0 || width > kMaxQuantizedWidth) {
    fail("E4M3 rows: width {} is not a multiple of {} up to {}", width, kPieceElements, kMaxQuantizedWidth);
  }
  static_assert(kMaxQuantizedWidth == 16 * 32 * kPieceElements, "the widest form below holds the widest row");
  const int pieces = (width + 32 * kPieceElements - 1) / (32 * kPieceElements);
  if (pieces <= 1) return launch<T, 1>(x, rows, width, activation, values, scales, stream);
  if (pieces <= 2) return launch<T, 2>(x, rows, width, activation, values, scales, stream);
  if (pieces <= 3) return launch<T, 3>(x, rows, width, activation, values, scales, stream);
  if (pieces <= 4) return launch<T, 4>(x, rows, width, activation, values, scales, stream);
  if (pieces <= 8) return launch<T, 8>(x, rows, width, activation, values, scales, stream);
  if (pieces <= 12) return launch<T, 12>(x, rows, width, activation, values, scales, stream);
  launch<T, 16>(x, rows, width, activation, values, scales, stream);
}

template void quantize_rows<float>(const float*, int64_t, int, std::optional<Activation>, __nv_fp8_e4m3*, float*,
                                   cudaStream_t);
template void quantize_rows<__half>(const __half*, int64_t, int, std::optional<Activation>, __nv_fp8_e4m3*, float*,
                                    cudaStream_t);
template void quantize_rows<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int, std::optional<Activation>,
                                           __nv_fp8_e4m3*, float*, cudaStream_t);

}  // namespace trocr::cuda

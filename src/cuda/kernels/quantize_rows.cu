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

constexpr int kWarps = 8;            // per block
constexpr int kPieceElements = 8;    // 16 bytes of fp16 in, 8 bytes of E4M3 out
constexpr int kPiecesPerLane = 4;    // at most: a row takes as many warps as that needs
constexpr float kE4M3Max = 448.0f;

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffff, value, offset));
  return value;
}

// RowWarps warps per row (kWarps / RowWarps rows per block), each lane holding up to
// kPiecesPerLane pieces of 8 values, activated, in registers: a row is read once and activated
// once. One warp for a 768-wide row; a 3072-wide FFN row takes four (one warp holding it all
// needed ~100 registers and ran its erf GELU 4x slower than the plain activation pass, ncu).
template <typename T, int RowWarps>
__global__ void quantize_rows_kernel(const T* x, int64_t rows, int width, bool activate_first, Activation activation,
                                     __nv_fp8_e4m3* values, float* scales) {
  struct alignas(sizeof(T) * kPieceElements) Piece {
    T elements[kPieceElements];
  };
  constexpr int kRowsPerBlock = kWarps / RowWarps;
  __shared__ float row_largest[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row_warp = warp % RowWarps, lane_in_row = row_warp * 32 + lane;
  const int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + warp / RowWarps;
  const bool inside = row < rows;  // no early return: the row's warps meet at a barrier
  const Piece* in = reinterpret_cast<const Piece*>(x + row * width);
  float held[kPiecesPerLane][kPieceElements];
  float largest = 0.0f;
#pragma unroll
  for (int p = 0; p < kPiecesPerLane; ++p) {
    const int piece = lane_in_row + 32 * RowWarps * p;
    if (!inside || piece * kPieceElements >= width) break;
    const Piece loaded = in[piece];
#pragma unroll
    for (int e = 0; e < kPieceElements; ++e) {
      const float value = to_float(loaded.elements[e]);
      held[p][e] = activate_first ? activate(value, activation) : value;
      largest = fmaxf(largest, fabsf(held[p][e]));
    }
  }
  largest = warp_max(largest);
  if constexpr (RowWarps > 1) {
    if (lane == 0) row_largest[warp] = largest;
    __syncthreads();
    const int first = warp - row_warp;
    for (int w = 0; w < RowWarps; ++w) largest = fmaxf(largest, row_largest[first + w]);
  }
  if (!inside) return;
  // An all-zero row keeps scale 1: its values quantize to zeros either way.
  const float scale = largest > 0.0f ? largest / kE4M3Max : 1.0f;
  const float inverse = largest > 0.0f ? kE4M3Max / largest : 1.0f;
  uint2* out = reinterpret_cast<uint2*>(values + row * width);
#pragma unroll
  for (int p = 0; p < kPiecesPerLane; ++p) {
    const int piece = lane_in_row + 32 * RowWarps * p;
    if (piece * kPieceElements >= width) break;
    uint2 packed;
    __nv_fp8x2_storage_t* pairs = reinterpret_cast<__nv_fp8x2_storage_t*>(&packed);
#pragma unroll
    for (int e = 0; e < kPieceElements; e += 2) {
      pairs[e / 2] = __nv_cvt_float2_to_fp8x2(make_float2(held[p][e] * inverse, held[p][e + 1] * inverse),
                                              __NV_SATFINITE, __NV_E4M3);
    }
    out[piece] = packed;
  }
  if (lane_in_row == 0) scales[row] = scale;
}

template <typename T, int RowWarps>
void launch(const T* x, int64_t rows, int width, std::optional<Activation> activation, __nv_fp8_e4m3* values,
            float* scales, cudaStream_t stream) {
  constexpr int kRowsPerBlock = kWarps / RowWarps;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  quantize_rows_kernel<T, RowWarps><<<unsigned(blocks), 32 * kWarps, 0, stream>>>(
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
  static_assert(kMaxQuantizedWidth == kWarps * 32 * kPiecesPerLane * kPieceElements, "a block holds the widest row");
  const int per_warp = 32 * kPiecesPerLane * kPieceElements;  // values a warp holds
  const int row_warps = (width + per_warp - 1) / per_warp;
  if (row_warps <= 1) return launch<T, 1>(x, rows, width, activation, values, scales, stream);
  if (row_warps <= 2) return launch<T, 2>(x, rows, width, activation, values, scales, stream);
  if (row_warps <= 4) return launch<T, 4>(x, rows, width, activation, values, scales, stream);
  launch<T, 8>(x, rows, width, activation, values, scales, stream);
}

template void quantize_rows<float>(const float*, int64_t, int, std::optional<Activation>, __nv_fp8_e4m3*, float*,
                                   cudaStream_t);
template void quantize_rows<__half>(const __half*, int64_t, int, std::optional<Activation>, __nv_fp8_e4m3*, float*,
                                    cudaStream_t);
template void quantize_rows<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int, std::optional<Activation>,
                                           __nv_fp8_e4m3*, float*, cudaStream_t);

}  // namespace trocr::cuda

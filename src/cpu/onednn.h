#pragma once
// Matrix products through oneDNN (Debian's libdnnl), the CPU engine's one owner of them: a
// primitive is created once per shape and reused, and the products run on oneDNN's OpenMP
// threads, which the engine's own loops share (cpu/threads.h).
#include <array>
#include <cstdint>

#include "cpu/linear.h"

namespace trocr::cpu {

// C[o, i] = scale * A[o, i] * B[o, i] (+ bias) for every batch index (o, i), then the post-op.
// A is m x k, B is k x n, C is m x n; each matrix is given by four element strides: outer batch,
// inner batch, row and column. Linear layers use one batch; attention batches images x heads.
struct MatmulShape {
  int64_t outer = 1, inner = 1;
  int64_t m = 0, k = 0, n = 0;
  std::array<int64_t, 4> a_strides{}, b_strides{}, c_strides{};
  float scale = 1.0f;
  bool bias = false;  // [n], broadcast over rows
  LinearPostOp post;
  bool bf16 = false;  // A and B in bf16 (fp32 accumulation, C and bias fp32)
};

// x[m, k] * W^T for W stored [n, k], with contiguous rows.
MatmulShape linear_shape(int64_t m, int64_t k, int64_t n, bool bias, LinearPostOp post);

void run_matmul(const MatmulShape& shape, const float* a, const float* b, const float* bias, float* c);
// shape.bf16: A is rounded to bf16 on the way in (a contiguous m x k per batch index), B is bf16.
void run_bf16_matmul(const MatmulShape& shape, const float* a, const uint16_t* b, const float* bias, float* c);

// Whether oneDNN has bf16 matrix kernels for this CPU (AVX512_BF16 or AMX).
bool bf16_matmul_supported();

}  // namespace trocr::cpu

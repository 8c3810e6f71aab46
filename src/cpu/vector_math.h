#pragma once
// The CPU engine's vector loops over one row: each is compiled for AVX-512 (x86-64-v4), AVX2 with
// FMA (x86-64-v3) and baseline x86-64, and the CPU picks its version at load time. Sums run in
// 16 parallel partial sums (OpenMP SIMD reductions); exp is a polynomial accurate to ~2 ulp, so
// that softmax vectorizes too.
#include <cstdint>

namespace trocr::cpu {

// One query of one head against `keys` keys and values `stride` floats apart:
// out[d] = sum_j softmax_j(scale * q . k_j) v_j[d]; `scratch` holds `keys` floats.
void attend(const float* q, const float* k, const float* v, int64_t stride, int64_t keys, int64_t dim, float scale,
            float* scratch, float* out);
// out[r] = w . x[r] for the `rows` rows of x (k floats each, contiguous): one weight row of a
// product with few rows. dot_rows_bf16 reads w as bf16 bits.
void dot_rows(const float* w, const float* x, int64_t rows, int64_t k, float* out);
void dot_rows_bf16(const uint16_t* w, const float* x, int64_t rows, int64_t k, float* out);
// Softmax of row[0 .. visible) in place, times `scale` first; keys from `visible` to `count` weigh 0.
void softmax(float* row, int64_t visible, int64_t count, float scale = 1.0f);
// y = (x - mean) / sqrt(var + eps) * gamma + beta over one row of `width`.
// The largest of x[0 .. n), and sum_j exp(x_j - shift) accumulated in double: a log-softmax
// over a 64k vocabulary without 64k scalar exp calls.
float max_value(const float* x, int64_t n);
double sum_of_exp(const float* x, int64_t n, float shift);
// bf16 bits of each value, rounded to nearest even (as torch and oneDNN round).
void round_to_bf16(const float* x, uint16_t* y, int64_t n);
void layer_norm_row(const float* x, int64_t width, const float* gamma, const float* beta, float eps, float* y);

}  // namespace trocr::cpu

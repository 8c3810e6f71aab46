#include "cpu/vector_math.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "common/dtype.h"

// One clone per instruction set; the dynamic loader's ifunc picks one for this CPU.
#define TROCR_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace trocr::cpu {
namespace {

// expf by range reduction to r in [-ln2/2, ln2/2] and a degree-6 polynomial (Cephes' expf
// coefficients), 2^n put into the exponent bits; inputs below -87.3 give 0, as expf underflows.
inline float exp_approx(float x) {
  const bool underflows = x <= -87.33f;
  x = x < -87.33f ? -87.33f : x;
  x = x > 88.37f ? 88.37f : x;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (vectorizes where nearbyint would not).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p * r, r, r) + 1.0f;
  // 2^n into the exponent, in unsigned arithmetic: n may be negative, and shifting a negative
  // int is undefined before C++20.
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  bits += static_cast<uint32_t>(static_cast<int32_t>(n)) << 23;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return underflows ? 0.0f : result;
}

}  // namespace

TROCR_VECTOR_CLONES
void softmax(float* row, int64_t visible, int64_t count, float scale) {
  float largest = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : largest)
  for (int64_t j = 0; j < visible; ++j) largest = row[j] * scale > largest ? row[j] * scale : largest;
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < visible; ++j) {
    row[j] = exp_approx(row[j] * scale - largest);
    total += row[j];
  }
  const float inverse = 1.0f / total;
#pragma omp simd
  for (int64_t j = 0; j < visible; ++j) row[j] *= inverse;
  for (int64_t j = visible; j < count; ++j) row[j] = 0.0f;
}

TROCR_VECTOR_CLONES
void attend(const float* q, const float* k, const float* v, int64_t stride, int64_t keys, int64_t dim, float scale,
            float* scratch, float* out) {
  for (int64_t j = 0; j < keys; ++j) {
    const float* key = k + j * stride;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t d = 0; d < dim; ++d) sum += q[d] * key[d];
    scratch[j] = sum;
  }
  softmax(scratch, keys, keys, scale);
  for (int64_t d = 0; d < dim; ++d) out[d] = 0.0f;
  for (int64_t j = 0; j < keys; ++j) {
    const float* value = v + j * stride;
    const float weight = scratch[j];
#pragma omp simd
    for (int64_t d = 0; d < dim; ++d) out[d] += weight * value[d];
  }
}

namespace {

// The rows of x against one weight row, whose values `widen` turns into floats.
template <typename Weight, typename Widen>
inline void dot_rows_widened(const Weight* w, const float* x, int64_t rows, int64_t k, float* out, Widen widen) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * k;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < k; ++i) sum += widen(w[i]) * row[i];
    out[r] = sum;
  }
}

}  // namespace

TROCR_VECTOR_CLONES
void dot_rows(const float* w, const float* x, int64_t rows, int64_t k, float* out) {
  dot_rows_widened(w, x, rows, k, out, [](float value) { return value; });
}

TROCR_VECTOR_CLONES
void dot_rows_bf16(const uint16_t* w, const float* x, int64_t rows, int64_t k, float* out) {
  dot_rows_widened(w, x, rows, k, out, bfloat16_to_float);  // bf16 widens to fp32 exactly
}

TROCR_VECTOR_CLONES
float max_value(const float* x, int64_t n) {
  float largest = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : largest)
  for (int64_t i = 0; i < n; ++i) largest = x[i] > largest ? x[i] : largest;
  return largest;
}

TROCR_VECTOR_CLONES
double sum_of_exp(const float* x, int64_t n, float shift) {
  double total = 0.0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(exp_approx(x[i] - shift));
  return total;
}

TROCR_VECTOR_CLONES
void round_to_bf16(const float* x, uint16_t* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    bits += 0x7fffu + ((bits >> 16) & 1u);
    y[i] = static_cast<uint16_t>(bits >> 16);
  }
}

TROCR_VECTOR_CLONES
void layer_norm_row(const float* x, int64_t width, const float* gamma, const float* beta, float eps, float* y) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < width; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(width);
  float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
  for (int64_t i = 0; i < width; ++i) squares += (x[i] - mean) * (x[i] - mean);
  const float inverse = 1.0f / std::sqrt(squares / static_cast<float>(width) + eps);
#pragma omp simd
  for (int64_t i = 0; i < width; ++i) y[i] = (x[i] - mean) * inverse * gamma[i] + beta[i];
}

}  // namespace trocr::cpu

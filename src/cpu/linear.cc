#include "cpu/linear.h"

#include <cblas.h>

namespace trocr::cpu {

void matmul_transposed(const float* input, int64_t rows, int64_t in_features, const float* weight,
                       int64_t out_features, const float* bias, float* output) {
  if (rows == 0) return;
  float beta = 0.0f;
  if (bias != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < out_features; ++o) output[r * out_features + o] = bias[o];
    }
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
              static_cast<int>(out_features), static_cast<int>(in_features), 1.0f, input,
              static_cast<int>(in_features), weight, static_cast<int>(in_features), beta, output,
              static_cast<int>(out_features));
}

void linear(const float* input, int64_t rows, const LinearWeights& layer, float* output) {
  matmul_transposed(input, rows, layer.in_features(), layer.weight.data(), layer.out_features(),
                    layer.bias.empty() ? nullptr : layer.bias.data(), output);
}

}  // namespace trocr::cpu

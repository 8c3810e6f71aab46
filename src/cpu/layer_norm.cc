#include "cpu/layer_norm.h"

#include <cmath>

namespace trocr::cpu {

void layer_norm(const float* input, int64_t rows, int64_t width, const LayerNormWeights& weights,
                float eps, float* output) {
  const float* gamma = weights.weight.data();
  const float* beta = weights.bias.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = input + r * width;
    float* y = output + r * width;
    // Accumulate in double: the reference for fp32 kernels should not add rounding of its own.
    double sum = 0.0;
    for (int64_t i = 0; i < width; ++i) sum += x[i];
    const double mean = sum / width;
    double squares = 0.0;
    for (int64_t i = 0; i < width; ++i) squares += (x[i] - mean) * (x[i] - mean);
    const double inverse = 1.0 / std::sqrt(squares / width + eps);
    for (int64_t i = 0; i < width; ++i) {
      y[i] = static_cast<float>((x[i] - mean) * inverse) * gamma[i] + beta[i];
    }
  }
}

void add_layer_norm(float* residual, const float* delta, int64_t rows, int64_t width,
                    const LayerNormWeights& weights, float eps) {
  for (int64_t i = 0; i < rows * width; ++i) residual[i] += delta[i];
  layer_norm(residual, rows, width, weights, eps, residual);
}

}  // namespace trocr::cpu

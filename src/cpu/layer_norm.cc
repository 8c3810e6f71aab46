#include "cpu/layer_norm.h"

#include "cpu/vector_math.h"

namespace trocr::cpu {

void layer_norm(const float* input, int64_t rows, int64_t width, const LayerNormWeights& weights,
                float eps, float* output) {
  const float* gamma = weights.weight.data();
  const float* beta = weights.bias.data();
#pragma omp parallel for schedule(static) if (rows * width > 16384)
  for (int64_t r = 0; r < rows; ++r) layer_norm_row(input + r * width, width, gamma, beta, eps, output + r * width);
}

}  // namespace trocr::cpu

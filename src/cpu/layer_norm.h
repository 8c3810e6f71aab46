#pragma once
// LayerNorm over the last dimension: y = (x - mean) / sqrt(var + eps) * weight + bias, with the
// biased variance as torch.nn.LayerNorm computes it. fp32; `input` may equal `output`.
#include <cstdint>

#include "model/weights.h"

namespace trocr::cpu {

void layer_norm(const float* input, int64_t rows, int64_t width, const LayerNormWeights& weights,
                float eps, float* output);

}  // namespace trocr::cpu

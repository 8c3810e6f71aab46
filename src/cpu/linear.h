#pragma once
// y[rows, out] = x[rows, in] * W^T + b, with W stored [out, in] as nn.Linear keeps it.
// fp32, through OpenBLAS sgemm.
#include <cstdint>

#include "model/weights.h"

namespace trocr::cpu {

void linear(const float* input, int64_t rows, const LinearWeights& layer, float* output);

// Raw form: output[rows, out] = input[rows, in] * weight[out, in]^T (+ bias when not null).
void matmul_transposed(const float* input, int64_t rows, int64_t in_features, const float* weight,
                       int64_t out_features, const float* bias, float* output);

}  // namespace trocr::cpu

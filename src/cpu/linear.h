#pragma once
// y[rows, out] = x[rows, in] * W^T + b, with W stored [out, in] as nn.Linear keeps it, and an
// optional fused post-op: an activation, or adding the result into y (a residual).
// Through oneDNN's matmul (its JIT kernels pick AVX-512 or AVX2 from the CPU at run time): fp32,
// or bf16 products with fp32 accumulation and output when the weight carries a bf16 copy.
#include <cstdint>
#include <optional>

#include "model/weights.h"
#include "trocr/config.h"

namespace trocr::cpu {

enum class PostOp { None, Activation, AddToOutput };

struct LinearPostOp {
  PostOp kind = PostOp::None;
  Activation activation = Activation::Gelu;  // with PostOp::Activation

  static LinearPostOp none() { return {}; }
  static LinearPostOp activate(Activation activation) { return {PostOp::Activation, activation}; }
  static LinearPostOp add_to_output() { return {PostOp::AddToOutput, Activation::Gelu}; }
};

void linear(const float* input, int64_t rows, const LinearWeights& layer, float* output,
            LinearPostOp post = LinearPostOp::none());

// output[rows, out] = input[rows, in] * weight[out, in]^T (+ bias when not null).
void matmul_transposed(const float* input, int64_t rows, const HostTensor& weight, const float* bias,
                       float* output, LinearPostOp post = LinearPostOp::none());
// The same over a raw fp32 weight.
void matmul_transposed(const float* input, int64_t rows, int64_t in_features, const float* weight,
                       int64_t out_features, const float* bias, float* output,
                       LinearPostOp post = LinearPostOp::none());

// Gives every matrix-product weight of the model a bf16 copy (rounded to nearest even), which
// linear and matmul_transposed then use. Fails when the CPU has no bf16 matrix instructions.
void convert_to_bf16(ModelWeights& weights);

}  // namespace trocr::cpu

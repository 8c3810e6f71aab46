#include "cpu/linear.h"

#include <vector>

#include "common/check.h"
#include "common/dtype.h"
#include "cpu/activation.h"
#include "cpu/onednn.h"
#include "cpu/vector_math.h"

namespace trocr::cpu {
namespace {

// Up to this many rows (a greedy decode step at batch 1 or 2), a product is one pass over the
// weights: each thread takes a range of outputs and computes each row's dot product with a weight
// row while it is in cache. On the 2-core machine (k 256-1024, n 256-4096) oneDNN's matmul took
// 2.0-3.9x longer at one row and 1.5-2.2x at two, and was faster from four rows on
// (docs/CPU_ENGINE.md).
constexpr int64_t kSmallRows = 2;

// Weight is float or bf16 bits (uint16_t); with bf16 the input is rounded to bf16 first, as
// oneDNN's bf16 products round it.
template <typename Weight>
void small_rows_product(const float* input, int64_t rows, int64_t in_features, const Weight* weight,
                        int64_t out_features, const float* bias, float* output, LinearPostOp post) {
  const float* x = input;
  if constexpr (sizeof(Weight) == 2) {
    thread_local std::vector<uint16_t> bits;
    thread_local std::vector<float> rounded;
    bits.resize(size_t(rows * in_features));
    rounded.resize(bits.size());
    round_to_bf16(input, bits.data(), rows * in_features);
    convert_to_float32(DType::BF16, bits.data(), bits.size(), rounded.data());
    x = rounded.data();
  }
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < out_features; ++j) {
    float values[kSmallRows];
    if constexpr (sizeof(Weight) == 2) {
      dot_rows_bf16(weight + j * in_features, x, rows, in_features, values);
    } else {
      dot_rows(weight + j * in_features, x, rows, in_features, values);
    }
    for (int64_t r = 0; r < rows; ++r) {
      float value = values[r] + (bias != nullptr ? bias[j] : 0.0f);
      if (post.kind == PostOp::Activation) apply_activation(post.activation, &value, 1);
      float& out = output[r * out_features + j];
      out = post.kind == PostOp::AddToOutput ? out + value : value;
    }
  }
}

}  // namespace

void matmul_transposed(const float* input, int64_t rows, int64_t in_features, const float* weight,
                       int64_t out_features, const float* bias, float* output, LinearPostOp post) {
  if (rows == 0) return;
  if (rows <= kSmallRows) return small_rows_product(input, rows, in_features, weight, out_features, bias, output, post);
  run_matmul(linear_shape(rows, in_features, out_features, bias != nullptr, post), input, weight, bias, output);
}

void matmul_transposed(const float* input, int64_t rows, const HostTensor& weight, const float* bias,
                       float* output, LinearPostOp post) {
  if (rows == 0) return;
  const int64_t out_features = weight.shape[0], in_features = weight.shape[1];
  if (weight.bf16.empty()) {
    return matmul_transposed(input, rows, in_features, weight.data(), out_features, bias, output, post);
  }
  if (rows <= kSmallRows) {
    return small_rows_product(input, rows, in_features, weight.bf16.data(), out_features, bias, output, post);
  }
  MatmulShape shape = linear_shape(rows, in_features, out_features, bias != nullptr, post);
  shape.bf16 = true;
  run_bf16_matmul(shape, input, weight.bf16.data(), bias, output);
}

void linear(const float* input, int64_t rows, const LinearWeights& layer, float* output, LinearPostOp post) {
  matmul_transposed(input, rows, layer.weight, layer.bias_or_null(), output, post);
}

void convert_to_bf16(ModelWeights& weights) {
  if (!bf16_matmul_supported()) {
    fail("dtype 'bf16': this CPU has no bf16 matrix instructions (AVX512_BF16 or AMX); use fp32");
  }
  std::vector<HostTensor*> matrices = {&weights.encoder.patch_projection.weight, &weights.decoder.output_projection};
  if (weights.encoder_to_decoder) matrices.push_back(&weights.encoder_to_decoder->weight);
  for (auto& layer : weights.encoder.layers) {
    for (LinearWeights* linear : {&layer.query, &layer.key, &layer.value, &layer.attention_output,
                                  &layer.intermediate, &layer.output}) {
      matrices.push_back(&linear->weight);
    }
  }
  for (auto& layer : weights.decoder.layers) {
    for (LinearWeights* linear : {&layer.self_query, &layer.self_key, &layer.self_value, &layer.self_output,
                                  &layer.cross_query, &layer.cross_key, &layer.cross_value, &layer.cross_output,
                                  &layer.fc1, &layer.fc2}) {
      matrices.push_back(&linear->weight);
    }
  }
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < matrices.size(); ++i) {
    HostTensor& matrix = *matrices[i];
    matrix.bf16.resize(matrix.values.size());
    round_to_bf16(matrix.values.data(), matrix.bf16.data(), int64_t(matrix.values.size()));
  }
}

}  // namespace trocr::cpu

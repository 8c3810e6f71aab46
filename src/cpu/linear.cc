#include "cpu/linear.h"

#include "common/check.h"
#include "cpu/onednn.h"
#include "cpu/vector_math.h"

namespace trocr::cpu {

void matmul_transposed(const float* input, int64_t rows, int64_t in_features, const float* weight,
                       int64_t out_features, const float* bias, float* output, LinearPostOp post) {
  if (rows == 0) return;
  run_matmul(linear_shape(rows, in_features, out_features, bias != nullptr, post), input, weight, bias, output);
}

void matmul_transposed(const float* input, int64_t rows, const HostTensor& weight, const float* bias,
                       float* output, LinearPostOp post) {
  if (rows == 0) return;
  const int64_t out_features = weight.shape[0], in_features = weight.shape[1];
  if (weight.bf16.empty()) {
    return matmul_transposed(input, rows, in_features, weight.data(), out_features, bias, output, post);
  }
  MatmulShape shape = linear_shape(rows, in_features, out_features, bias != nullptr, post);
  shape.bf16 = true;
  run_bf16_matmul(shape, input, weight.bf16.data(), bias, output);
}

void linear(const float* input, int64_t rows, const LinearWeights& layer, float* output, LinearPostOp post) {
  matmul_transposed(input, rows, layer.weight, layer.bias.empty() ? nullptr : layer.bias.data(), output, post);
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

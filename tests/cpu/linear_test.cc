// cpu::matmul_transposed, wherever it sends a product (our few-row pass or oneDNN): against a
// double-precision reference computed here, on awkward shapes, with and without bias, with each
// post-op, in fp32 and with bf16 weights (the reference then rounds inputs and weights to bf16).
#include <cmath>
#include <random>

#include "common/dtype.h"
#include "cpu/linear.h"
#include "cpu/onednn.h"
#include "cpu/vector_math.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

float bf16_rounded(float value) { return bfloat16_to_float(float_to_bfloat16(value)); }

double activated(Activation activation, double x) {
  switch (activation) {
    case Activation::Gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::GeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::Relu: return x > 0 ? x : 0.0;
  }
  return x;
}

TEST(CpuLinear, FewAndManyRowsMatchADoubleReference) {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::vector<cpu::LinearPostOp> posts = {cpu::LinearPostOp::none(), cpu::LinearPostOp::add_to_output(),
                                                cpu::LinearPostOp::activate(Activation::Gelu),
                                                cpu::LinearPostOp::activate(Activation::GeluTanh),
                                                cpu::LinearPostOp::activate(Activation::Relu)};
  int checked = 0;
  for (int64_t rows : {1, 2, 3, 5, 8, 9}) {
    for (auto [in, out] : {std::pair<int64_t, int64_t>{37, 1}, {256, 17}, {19, 300}}) {
      for (bool bf16 : {false, true}) {
        if (bf16 && !cpu::bf16_matmul_supported()) continue;  // the engine refuses bf16 there
        for (bool with_bias : {false, true}) {
          for (const cpu::LinearPostOp& post : posts) {
            HostTensor weight;
            weight.shape = {out, in};
            for (int64_t i = 0; i < out * in; ++i) weight.values.push_back(normal(generator));
            if (bf16) {
              weight.bf16.resize(weight.values.size());
              cpu::round_to_bf16(weight.values.data(), weight.bf16.data(), int64_t(weight.values.size()));
            }
            std::vector<float> input(rows * in), bias(out), output(rows * out), before(rows * out);
            for (auto* values : {&input, &bias, &before}) {
              for (float& value : *values) value = normal(generator);
            }
            output = before;
            cpu::matmul_transposed(input.data(), rows, weight, with_bias ? bias.data() : nullptr, output.data(), post);
            const std::string where = "rows " + std::to_string(rows) + ", " + std::to_string(in) + " -> " +
                                      std::to_string(out) + (bf16 ? ", bf16" : ", fp32") +
                                      (with_bias ? ", bias" : "") + ", post-op " + std::to_string(int(post.kind));
            for (int64_t r = 0; r < rows; ++r) {
              for (int64_t j = 0; j < out; ++j) {
                double sum = with_bias ? bias[j] : 0.0, magnitude = 0.0;
                for (int64_t i = 0; i < in; ++i) {
                  const float x = bf16 ? bf16_rounded(input[r * in + i]) : input[r * in + i];
                  const float w = bf16 ? bf16_rounded(weight.values[j * in + i]) : weight.values[j * in + i];
                  sum += double(x) * w;
                  magnitude += std::fabs(double(x) * w);
                }
                if (post.kind == cpu::PostOp::Activation) sum = activated(post.activation, sum);
                if (post.kind == cpu::PostOp::AddToOutput) sum += before[r * out + j];
                ASSERT_NEAR(output[r * out + j], sum, 1e-5 * (magnitude + 1.0)) << where << ", row " << r << " column " << j;
              }
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 6 * 3 * (cpu::bf16_matmul_supported() ? 2 : 1) * 2 * 5);
}


}  // namespace
}  // namespace trocr::test

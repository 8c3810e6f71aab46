// The fused decoder layer (one cluster launch per layer) against the CPU: a post-LN TrOCR layer
// computed with the CPU reference ops, rounding to T where the GPU path stores T. Rows at one
// shared position and at their own, beams of one image and rows of different images, a first
// step (one cached key), and an awkward width. Skips without an sm_90 GPU.
#include <cuda_runtime.h>

#include <cmath>
#include <numeric>

#include "cpu/activation.h"
#include "cpu/attention.h"
#include "cpu/layer_norm.h"
#include "cpu/linear.h"
#include "cuda/kernel_choice.h"
#include "cuda/kernels/kernels.h"
#include "support/device_values.h"
#include "support/gpu_test.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

struct LayerShape {
  int width, heads, ffn, keys;
};

struct RowsCase {
  std::vector<int> row_images;
  std::vector<int> positions;  // one (shared), or one per image (each row at its image's own)
};

// A linear layer's random weights, on the host (rounded to T) and the device.
template <typename T>
struct TestLinear {
  TestLinear(int out, int in, std::mt19937& generator)
      : out(out), in(in), weight(rounded<T>(random_values(size_t(out) * in, generator, 1.0f / std::sqrt(float(in))))),
        bias(rounded<T>(random_values(out, generator, 0.1f))), device_weight(to_device<T>(weight)),
        device_bias(to_device<T>(bias)) {}
  // y = x W^T + b, rounded to T (as every product of the layer stores it).
  std::vector<float> apply(const std::vector<float>& x, int rows) const {
    std::vector<float> y(size_t(rows) * out);
    cpu::matmul_transposed(x.data(), rows, in, weight.data(), out, bias.data(), y.data());
    return rounded<T>(y);
  }
  int out, in;
  std::vector<float> weight, bias;
  DeviceBuffer<T> device_weight, device_bias;
};

struct TestNorm {
  TestNorm(int width, std::mt19937& generator)
      : weights{{{width}, random_values(width, generator, 0.3f), {}}, {{width}, random_values(width, generator, 0.3f), {}}} {
    for (auto& g : weights.weight.values) g += 1.0f;
    gamma.upload(weights.weight.values);
    beta.upload(weights.bias.values);
  }
  template <typename T>
  std::vector<float> apply(const std::vector<float>& residual, const std::vector<float>& delta, int rows) const {
    std::vector<float> sum(residual.size()), out(residual.size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = residual[i] + delta[i];
    cpu::layer_norm(sum.data(), rows, int(residual.size() / rows), weights, 1e-5f, out.data());
    return rounded<T>(out);
  }
  LayerNormWeights weights;
  DeviceBuffer<float> gamma, beta;
};

template <typename T>
void check_fused_layer(const LayerShape& shape, const RowsCase& rows_case, std::mt19937& generator) {
  const int width = shape.width, heads = shape.heads, dim = width / heads, ffn = shape.ffn, keys = shape.keys;
  const std::vector<int>& row_images = rows_case.row_images;
  const int rows = int(row_images.size());
  const int images = *std::max_element(row_images.begin(), row_images.end()) + 1;
  const bool per_row = rows_case.positions.size() > 1;
  const auto position_of = [&](int r) { return per_row ? rows_case.positions[row_images[r]] : rows_case.positions[0]; };
  const int positions = 40;
  const float scale = 1.0f / std::sqrt(float(dim));
  // Cache slots: distinct per row, not in row order.
  const int slots = rows + 2;
  std::vector<int> row_slots(rows);
  for (int r = 0; r < rows; ++r) row_slots[r] = (r * 5 + 1) % slots;

  const TestLinear<T> qkv(3 * width, width, generator), self_output(width, width, generator),
      cross_query(width, width, generator), cross_output(width, width, generator), fc1(ffn, width, generator),
      fc2(width, ffn, generator);
  const TestNorm self_norm(width, generator), cross_norm(width, generator), final_norm(width, generator);
  const auto input = rounded<T>(random_values(size_t(rows) * width, generator));
  auto cache_keys = rounded<T>(random_values(size_t(slots) * positions * width, generator));
  auto cache_values = rounded<T>(random_values(size_t(slots) * positions * width, generator));
  // The cross K/V table as the decoder holds it for one layer: K then V side by side per key.
  const int64_t key_stride = 2 * width, image_stride = int64_t(keys) * key_stride;
  const auto cross_table = rounded<T>(random_values(size_t(images) * image_stride, generator));

  // The CPU layer.
  const auto qkv_out = qkv.apply(input, rows);
  std::vector<float> context(size_t(rows) * width);
  for (int r = 0; r < rows; ++r) {
    const size_t table = size_t(row_slots[r]) * positions * width, at = table + size_t(position_of(r)) * width;
    std::copy_n(qkv_out.begin() + size_t(r) * 3 * width + width, width, cache_keys.begin() + at);
    std::copy_n(qkv_out.begin() + size_t(r) * 3 * width + 2 * width, width, cache_values.begin() + at);
    cpu::AttentionShape attention;
    attention.keys = position_of(r) + 1;
    attention.heads = heads;
    attention.head_dim = dim;
    attention.q_stride = 3 * width;
    attention.kv_stride = width;
    attention.scale = scale;
    cpu::attention(qkv_out.data() + size_t(r) * 3 * width, cache_keys.data() + table, cache_values.data() + table,
                   attention, context.data() + size_t(r) * width);
  }
  const auto normed1 = self_norm.apply<T>(input, self_output.apply(rounded<T>(context), rows), rows);
  const auto queries = cross_query.apply(normed1, rows);
  for (int r = 0; r < rows; ++r) {
    cpu::AttentionShape attention;
    attention.keys = keys;
    attention.heads = heads;
    attention.head_dim = dim;
    attention.q_stride = width;
    attention.kv_stride = key_stride;
    attention.scale = scale;
    const float* image = cross_table.data() + row_images[r] * image_stride;
    cpu::attention(queries.data() + size_t(r) * width, image, image + width, attention,
                   context.data() + size_t(r) * width);
  }
  const auto normed2 = cross_norm.apply<T>(normed1, cross_output.apply(rounded<T>(context), rows), rows);
  std::vector<float> hidden(size_t(rows) * ffn);
  cpu::matmul_transposed(normed2.data(), rows, width, fc1.weight.data(), ffn, fc1.bias.data(), hidden.data());
  cpu::apply_activation(Activation::Gelu, hidden.data(), hidden.size());
  const auto expected = final_norm.apply<T>(normed2, fc2.apply(rounded<T>(hidden), rows), rows);

  // The GPU layer, in place on its input rows.
  auto d_hidden = to_device<T>(input);
  // The device caches start from the prefix only: the kernel must write the new K and V itself.
  auto stale_keys = cache_keys, stale_values = cache_values;
  for (int r = 0; r < rows; ++r) {
    const size_t at = (size_t(row_slots[r]) * positions + position_of(r)) * width;
    std::fill_n(stale_keys.begin() + at, width, 0.0f);
    std::fill_n(stale_values.begin() + at, width, 0.0f);
  }
  auto d_keys = to_device<T>(stale_keys), d_values = to_device<T>(stale_values), d_table = to_device<T>(cross_table);
  const std::vector<int> starts = cuda::cross_attention_groups(row_images);
  DeviceBuffer<int> d_slots, d_images, d_starts, d_positions;
  d_slots.upload(row_slots);
  d_images.upload(row_images);
  d_starts.upload(starts);
  d_positions.upload(rows_case.positions);
  cuda::FusedLayerParams<T> params{};
  params.weights = {qkv.device_weight.data(),          qkv.device_bias.data(),          self_output.device_weight.data(),
                    self_output.device_bias.data(),    cross_query.device_weight.data(), cross_query.device_bias.data(),
                    cross_output.device_weight.data(), cross_output.device_bias.data(), fc1.device_weight.data(),
                    fc1.device_bias.data(),            fc2.device_weight.data(),        fc2.device_bias.data(),
                    self_norm.gamma.data(),            self_norm.beta.data(),           cross_norm.gamma.data(),
                    cross_norm.beta.data(),            final_norm.gamma.data(),         final_norm.beta.data()};
  params.rows = rows, params.width = width, params.heads = heads, params.ffn = ffn;
  params.scale = scale, params.eps = 1e-5f, params.activation = Activation::Gelu;
  params.input = params.output = d_hidden.data();
  params.cache_keys = d_keys.data(), params.cache_values = d_values.data();
  params.slot_stride = int64_t(positions) * width, params.row_slots = d_slots.data();
  params.position = {d_positions.data(), per_row ? d_images.data() : nullptr};
  params.cross_keys = d_table.data(), params.cross_values = d_table.data() + width;
  params.image_stride = image_stride, params.key_stride = key_stride, params.keys = keys;
  params.groups = int(starts.size()) - 1, params.group_starts = d_starts.data(), params.row_images = d_images.data();
  cuda::fused_decoder_layer<T>(params, nullptr);
  TROCR_CUDA_CHECK(cudaDeviceSynchronize());

  const std::string what = std::to_string(rows) + " rows, width " + std::to_string(width);
  EXPECT_LE(relative_error(to_host(d_hidden), expected), tolerance<T>() * 4) << what;
  EXPECT_LE(relative_error(to_host(d_keys), cache_keys), tolerance<T>()) << what << ": the cache's new keys";
  EXPECT_LE(relative_error(to_host(d_values), cache_values), tolerance<T>()) << what << ": the cache's new values";
}

template <typename T>
class CudaFusedLayer : public ::testing::Test {
 protected:
  void SetUp() override {
    TROCR_SKIP_WITHOUT_GPU();
    if (cuda::compute_capability() < cuda::kDependentLaunchArch) GTEST_SKIP() << "thread-block clusters need sm_90";
  }
  std::mt19937 generator_ = seeded_generator();
};
using ElementTypes = ::testing::Types<float, __half, __nv_bfloat16>;
TYPED_TEST_SUITE(CudaFusedLayer, ElementTypes);

TYPED_TEST(CudaFusedLayer, MatchesTheCpu) {
  // The demo model's decoder shape (4 heads of 64, 193 encoder tokens), then an awkward one.
  const LayerShape demo{256, 4, 1024, 193}, awkward{96, 3, 200, 37};
  check_fused_layer<TypeParam>(demo, {{0}, {0}}, this->generator_);                 // the first step
  check_fused_layer<TypeParam>(demo, {{1, 1, 1, 1}, {17}}, this->generator_);       // beam 4 of one image
  check_fused_layer<TypeParam>(awkward, {{2, 2, 0, 1, 1, 1, 3}, {5}}, this->generator_);
  std::vector<int> sixteen(16), own(16);
  std::iota(sixteen.begin(), sixteen.end(), 0);
  for (int i = 0; i < 16; ++i) own[i] = (i * 7) % 39;  // lines at their own positions, up to 38
  check_fused_layer<TypeParam>(awkward, {sixteen, own}, this->generator_);
  check_fused_layer<TypeParam>(demo, {std::vector<int>(16, 0), {33}}, this->generator_);  // a group of 16
}

TEST(CudaFusedLayerShapes, RefusesWhatItCannotHold) {
  EXPECT_TRUE(cuda::fused_decoder_layer_fits(DType::F16, 16, 256, 4, 1024));
  EXPECT_FALSE(cuda::fused_decoder_layer_fits(DType::F16, 17, 256, 4, 1024)) << "rows";
  EXPECT_FALSE(cuda::fused_decoder_layer_fits(DType::F16, 1, 256, 2, 1024)) << "heads of 128";
  EXPECT_FALSE(cuda::fused_decoder_layer_fits(DType::F16, 1, 1024, 16, 4096)) << "trocr-base's FFN";
  EXPECT_FALSE(cuda::fused_decoder_layer_fits(DType::F16, 1, 250, 5, 1000)) << "heads of 50: not 16-byte rows";
}

}  // namespace
}  // namespace trocr::test

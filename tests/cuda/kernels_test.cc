// Every CUDA kernel against the CPU reference on fresh random inputs of awkward sizes, in
// fp32, fp16 and bf16 (in the manner of llama.cpp's test-backend-ops). Skips without a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>
#include <cmath>
#include <numeric>
#include <random>

#include "common/dtype.h"
#include "cpu/activation.h"
#include "cpu/attention.h"
#include "cpu/layer_norm.h"
#include "cpu/linear.h"
#include "cuda/cudnn_attention.h"
#include "cuda/device_buffer.h"
#include "cuda/dtype_traits.h"
#include "support/gpu_test.h"
#include "cuda/gemm.h"
#include "cuda/kernels/kernels.h"
#include "decoding/logits_processors.h"
#include "support/device_values.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

template <typename T>
class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    TROCR_SKIP_WITHOUT_GPU();
  }
  std::mt19937 generator_ = seeded_generator();
};
using ElementTypes = ::testing::Types<float, __half, __nv_bfloat16>;
TYPED_TEST_SUITE(CudaKernels, ElementTypes);
// The tensor-core kernels exist for fp16/bf16 only (fp32 takes the GEMM paths, which the fp32
// goldens cover).
template <typename T>
class CudaHalfKernels : public CudaKernels<T> {};
using HalfTypes = ::testing::Types<__half, __nv_bfloat16>;
TYPED_TEST_SUITE(CudaHalfKernels, HalfTypes);

TYPED_TEST(CudaKernels, LinearWithBiasAndActivations) {
  using T = TypeParam;
  for (auto [rows, in, out] : {std::tuple{1, 71, 53}, std::tuple{37, 64, 130}, std::tuple{300, 33, 7}}) {
    const auto x = rounded<T>(random_values(size_t(rows) * in, this->generator_));
    const auto w = rounded<T>(random_values(size_t(out) * in, this->generator_, 0.2f));
    const auto b = rounded<T>(random_values(out, this->generator_));
    for (cuda::Epilogue epilogue : {cuda::Epilogue::Bias, cuda::Epilogue::ReluBias}) {
      std::vector<float> expected(size_t(rows) * out);
      cpu::matmul_transposed(x.data(), rows, in, w.data(), out, b.data(), expected.data());
      if (epilogue == cuda::Epilogue::ReluBias) cpu::apply_activation(Activation::Relu, expected.data(), expected.size());
      auto dx = to_device<T>(x), dw = to_device<T>(w), db = to_device<T>(b);
      DeviceBuffer<T> dy(expected.size());
      cuda::Gemm gemm(nullptr);
      gemm.matmul<T, T>(cuda::MatmulShape::linear(rows, out, in), dx.data(), dw.data(), dy.data(), db.data(), epilogue);
      EXPECT_LE(relative_error(to_host(dy), expected), tolerance<T>()) << rows << "x" << in << "x" << out;
    }
  }
}

TYPED_TEST(CudaKernels, SmallRowLinear) {
  using T = TypeParam;
  for (auto [rows, in, out] : {std::tuple{1, 64, 53}, std::tuple{5, 1024, 300}, std::tuple{8, 128, 1001}}) {
    const auto x = rounded<T>(random_values(size_t(rows) * in, this->generator_));
    const auto w = rounded<T>(random_values(size_t(out) * in, this->generator_, 0.2f));
    const auto b = rounded<T>(random_values(out, this->generator_));
    for (std::optional<Activation> activation :
         {std::optional<Activation>{}, std::optional{Activation::Relu}, std::optional{Activation::Gelu},
          std::optional{Activation::GeluTanh}}) {
      std::vector<float> expected(size_t(rows) * out);
      cpu::matmul_transposed(x.data(), rows, in, w.data(), out, b.data(), expected.data());
      if (activation) cpu::apply_activation(*activation, expected.data(), expected.size());
      auto dx = to_device<T>(x), dw = to_device<T>(w), db = to_device<T>(b);
      DeviceBuffer<T> dy(expected.size());
      ASSERT_TRUE((cuda::small_linear<T, T>(dx.data(), dw.data(), db.data(), dy.data(), rows, out, in, activation, nullptr)));
      EXPECT_LE(relative_error(to_host(dy), expected), tolerance<T>())
          << rows << "x" << in << "x" << out << " " << (activation ? activation_name(*activation) : "none");
    }
  }
  DeviceBuffer<T> unused(16);
  EXPECT_FALSE((cuda::small_linear<T, T>(unused.data(), unused.data(), nullptr, unused.data(), 9, 4, 8, std::nullopt, nullptr)));
}

TYPED_TEST(CudaKernels, SmallRowLinearOverLayerNormedInput) {
  using T = TypeParam;
  for (auto [rows, in, out] : {std::tuple{1, 1024, 300}, std::tuple{8, 256, 77}, std::tuple{3, 64, 1001}}) {
    const auto residual = rounded<T>(random_values(size_t(rows) * in, this->generator_, 3.0f));
    const auto delta = rounded<T>(random_values(size_t(rows) * in, this->generator_));
    const auto w = rounded<T>(random_values(size_t(out) * in, this->generator_, 0.2f));
    const auto b = rounded<T>(random_values(out, this->generator_));
    LayerNormWeights norm{{{in}, random_values(in, this->generator_), {}}, {{in}, random_values(in, this->generator_), {}}};
    std::vector<float> sum(residual.size()), normed(residual.size()), expected(size_t(rows) * out);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = residual[i] + delta[i];
    cpu::layer_norm(sum.data(), rows, in, norm, 1e-5f, normed.data());
    const auto normed_in_t = rounded<T>(normed);  // what the unfused LayerNorm kernel would store
    cpu::matmul_transposed(normed_in_t.data(), rows, in, w.data(), out, b.data(), expected.data());
    cpu::apply_activation(Activation::Gelu, expected.data(), expected.size());
    auto d_residual = to_device<T>(residual), d_delta = to_device<T>(delta), dw = to_device<T>(w), db = to_device<T>(b);
    DeviceBuffer<float> gamma, beta;
    gamma.upload(norm.weight.values);
    beta.upload(norm.bias.values);
    DeviceBuffer<T> d_normed(normed.size()), dy(expected.size());
    const cuda::NormedInput<T> input{d_residual.data(), d_delta.data(), gamma.data(), beta.data(), 1e-5f, d_normed.data()};
    ASSERT_TRUE((cuda::small_linear_normed<T, T>(input, dw.data(), db.data(), dy.data(), rows, out, in, Activation::Gelu,
                                                 nullptr)));
    EXPECT_LE(relative_error(to_host(dy), expected), tolerance<T>() * 2) << rows << "x" << in << "x" << out;
    EXPECT_LE(relative_error(to_host(d_normed), normed), tolerance<T>()) << "normed rows";
    EXPECT_EQ(to_host(d_residual), residual) << "the residual is read, not written";
  }
  DeviceBuffer<T> unused(16);
  const cuda::NormedInput<T> wide{unused.data(), unused.data(), nullptr, nullptr, 1e-5f, unused.data()};
  EXPECT_FALSE((cuda::small_linear_normed<T, T>(wide, unused.data(), nullptr, unused.data(), 1, 4, 2048, std::nullopt,
                                                nullptr)))
      << "rows wider than kMaxNormedWidth";
}

TYPED_TEST(CudaKernels, ResidualLayerNorm) {
  using T = TypeParam;
  // The block per row (few rows, or rows that do not split into 16-byte pieces: 331 and 4100
  // elements, fp32 rows over 1024), and a warp per row for thousands of rows (768, 1024, 2048: three
  // to all of a lane's pieces).
  for (auto [rows, width] :
       {std::pair{1, 32}, std::pair{7, 331}, std::pair{19, 1024}, std::pair{2, 4100}, std::pair{2053, 768},
        std::pair{2048, 1024}, std::pair{2048, 2048}}) {
    const auto residual = rounded<T>(random_values(size_t(rows) * width, this->generator_, 3.0f));
    const auto delta = rounded<T>(random_values(size_t(rows) * width, this->generator_));
    LayerNormWeights weights{{{width}, random_values(width, this->generator_), {}},
                             {{width}, random_values(width, this->generator_), {}}};
    std::vector<float> sum(residual.size()), expected(residual.size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = residual[i] + delta[i];
    cpu::layer_norm(sum.data(), rows, width, weights, 1e-5f, expected.data());
    auto d_residual = to_device<T>(residual), d_delta = to_device<T>(delta);
    DeviceBuffer<T> normed(expected.size());
    DeviceBuffer<float> gamma, beta;
    gamma.upload(weights.weight.values);
    beta.upload(weights.bias.values);
    cuda::residual_layer_norm<T>(d_residual.data(), d_delta.data(), normed.data(), gamma.data(),
                                 beta.data(), rows, width, 1e-5f, true, nullptr);
    EXPECT_LE(relative_error(to_host(normed), expected), tolerance<T>()) << rows << " x " << width;
    EXPECT_LE(relative_error(to_host(d_residual), sum), tolerance<T>()) << "stored sum";
  }
}

// The encoder's first and last LayerNorms: no delta, and the output over the input.
TYPED_TEST(CudaKernels, LayerNormInPlaceWithoutDelta) {
  using T = TypeParam;
  for (auto [rows, width] : {std::pair{2050, 768}, std::pair{9, 768}, std::pair{9, 331}}) {
    const auto residual = rounded<T>(random_values(size_t(rows) * width, this->generator_, 3.0f));
    LayerNormWeights weights{{{width}, random_values(width, this->generator_), {}},
                             {{width}, random_values(width, this->generator_), {}}};
    std::vector<float> expected(residual.size());
    cpu::layer_norm(residual.data(), rows, width, weights, 1e-6f, expected.data());
    auto states = to_device<T>(residual);
    DeviceBuffer<float> gamma, beta;
    gamma.upload(weights.weight.values);
    beta.upload(weights.bias.values);
    cuda::residual_layer_norm<T>(states.data(), nullptr, states.data(), gamma.data(), beta.data(), rows, width, 1e-6f,
                                 false, nullptr);
    EXPECT_LE(relative_error(to_host(states), expected), tolerance<T>()) << rows << " x " << width;
  }
}

TYPED_TEST(CudaKernels, Activations) {
  using T = TypeParam;
  // 1001 elements one at a time, 8192 in 16-byte pieces.
  for (auto [activation, count] : {std::pair{Activation::Gelu, 1001}, std::pair{Activation::GeluTanh, 1001},
                                   std::pair{Activation::Relu, 1001}, std::pair{Activation::Gelu, 8192}}) {
    const auto values = rounded<T>(random_values(count, this->generator_, 3.0f));
    auto expected = values;
    cpu::apply_activation(activation, expected.data(), expected.size());
    auto device = to_device<T>(values);
    cuda::apply_activation<T>(device.data(), values.size(), activation, nullptr);
    EXPECT_LE(relative_error(to_host(device), expected), tolerance<T>()) << activation_name(activation);
  }
}

TYPED_TEST(CudaKernels, DecodeAttentionOverCacheAndCrossKeys) {
  using T = TypeParam;
  const int heads = 3, dim = 24, width = heads * dim, rows = 5, tables = 5, max_keys = 77;
  // Cross-attention rows may share a table (beams of one image); cache rows never do.
  const std::vector<int> shared_sources = {2, 2, 0, 4, 1}, distinct_sources = {3, 0, 4, 1, 2};
  const auto queries = rounded<T>(random_values(size_t(rows) * width, this->generator_));
  auto keys = rounded<T>(random_values(size_t(tables) * max_keys * width, this->generator_));
  auto values = rounded<T>(random_values(size_t(tables) * max_keys * width, this->generator_));
  const float scale = 1.0f / std::sqrt(float(dim));
  // Cross keys; a cache where every row stands at one position; a cache where each row stands at
  // its own (lines that joined at different steps), read through the rows' sources.
  for (const char* mode : {"cross", "cache", "cache per row"}) {
    const bool cache_mode = std::string(mode) != "cross", per_row = std::string(mode) == "cache per row";
    const std::vector<int>& sources = cache_mode ? distinct_sources : shared_sources;
    std::vector<int> positions = {40};
    if (per_row) positions = {0, 32, 31, 76, 5};  // by table: one key, a chunk's first and last, all keys
    const auto position_of = [&](int r) { return per_row ? positions[sources[r]] : positions[0]; };
    const auto new_keys = rounded<T>(random_values(size_t(rows) * width, this->generator_));
    const auto new_values = rounded<T>(random_values(size_t(rows) * width, this->generator_));
    auto d_queries = to_device<T>(queries), d_keys = to_device<T>(keys), d_values = to_device<T>(values);
    auto d_new_keys = to_device<T>(new_keys), d_new_values = to_device<T>(new_values);
    DeviceBuffer<int> d_sources, d_position;
    d_sources.upload(sources);
    d_position.upload(positions);
    DeviceBuffer<T> out(size_t(rows) * width);
    DeviceBuffer<float> scratch(cuda::attention_scratch_size(rows, heads, dim, max_keys));
    cuda::StepPositions step_positions;
    if (cache_mode) step_positions = {d_position.data(), per_row ? d_sources.data() : nullptr};
    cuda::DecodeAttentionParams params{scratch.data(), max_keys, rows, heads, dim, scale, width, d_sources.data(),
                                       int64_t(max_keys) * width, width, max_keys, step_positions, width};
    cuda::decode_attention<T>(params, d_queries.data(), d_keys.data(), d_values.data(),
                              d_new_keys.data(), d_new_values.data(), out.data(), nullptr);
    std::vector<float> expected(size_t(rows) * width);
    auto table_keys = keys, table_values = values;
    for (int r = 0; r < rows; ++r) {
      const size_t table = size_t(sources[r]) * max_keys * width;
      const int position = position_of(r);
      if (cache_mode) {
        std::copy_n(new_keys.begin() + r * width, width, table_keys.begin() + table + size_t(position) * width);
        std::copy_n(new_values.begin() + r * width, width, table_values.begin() + table + size_t(position) * width);
      }
      cpu::AttentionShape shape;
      shape.keys = cache_mode ? position + 1 : max_keys;
      shape.heads = heads;
      shape.head_dim = dim;
      shape.q_stride = shape.kv_stride = width;
      shape.scale = scale;
      cpu::attention(queries.data() + r * width, table_keys.data() + table, table_values.data() + table,
                     shape, expected.data() + r * width);
    }
    EXPECT_LE(relative_error(to_host(out), expected), tolerance<T>() * 2) << mode;
  }
}

// Rows per image: beams of several images (a group of 16 and one cut at 16), single rows; few
// rows split the keys over blocks, 300 single rows do not.
template <typename T>
void check_grouped_cross_attention(int dim, std::mt19937& generator) {
  const int heads = 2, width = heads * dim;
  const float scale = 1.0f / std::sqrt(float(dim));
  std::vector<int> many(300);
  std::iota(many.begin(), many.end(), 0);
  const std::vector<std::vector<int>> layouts = {{0, 0, 0, 0, 2, 2, 2, 2, 1}, {3}, std::vector<int>(19, 1), many};
  for (const auto& row_images : layouts) {
    for (int keys : {577, 37}) {
      const int rows = static_cast<int>(row_images.size());
      const int images = *std::max_element(row_images.begin(), row_images.end()) + 1;
      // K and V of an image interleaved per key, as the decoder's cross K/V table holds them.
      const int64_t row_stride = 2 * width, image_stride = int64_t(keys) * row_stride;
      const auto queries = rounded<T>(random_values(size_t(rows) * width, generator));
      const auto table = rounded<T>(random_values(size_t(images) * image_stride, generator));
      auto d_queries = to_device<T>(queries), d_table = to_device<T>(table);
      const std::vector<int> starts = cuda::cross_attention_groups(row_images);
      DeviceBuffer<int> d_starts, d_images;
      d_starts.upload(starts);
      d_images.upload(row_images);
      DeviceBuffer<float> scratch(cuda::attention_scratch_size(rows, heads, dim, keys));
      DeviceBuffer<T> out(size_t(rows) * width);
      cuda::CrossAttentionParams params{scratch.data(), rows, static_cast<int>(starts.size()) - 1, d_starts.data(),
                                        d_images.data(), heads, dim, keys, scale, width, image_stride, row_stride};
      const bool launched = cuda::cross_attention<T>(params, d_queries.data(), d_table.data(), d_table.data() + width,
                                                     out.data(), nullptr);
      ASSERT_TRUE(launched);
      std::vector<float> expected(size_t(rows) * width);
      cpu::AttentionShape shape;
      shape.keys = keys;
      shape.heads = heads;
      shape.head_dim = dim;
      shape.q_stride = width;
      shape.kv_stride = row_stride;
      shape.scale = scale;
      for (int r = 0; r < rows; ++r) {
        const float* image = table.data() + row_images[r] * image_stride;
        cpu::attention(queries.data() + r * width, image, image + width, shape, expected.data() + r * width);
      }
      EXPECT_LE(relative_error(to_host(out), expected), tolerance<T>() * 2)
          << rows << " rows, " << keys << " keys, head_dim " << dim;
    }
  }
}

TYPED_TEST(CudaHalfKernels, GroupedCrossAttentionMatchesTheCpu) {
  check_grouped_cross_attention<TypeParam>(64, this->generator_);
  check_grouped_cross_attention<TypeParam>(32, this->generator_);
  EXPECT_EQ(cuda::cross_attention_groups(std::vector<int>(17, 5)), (std::vector<int>{0, 16, 17}));
  EXPECT_EQ(cuda::cross_attention_groups({1, 1, 0, 1}), (std::vector<int>{0, 2, 3, 4}));
}

// Greedy's cross-attention over the encoder states: one key split (many images) and several
// (one image; two), a partial last tile, fewer tiles than the pipeline's stages, fewer query rows
// than a tile, four widths (trocr-base's states are 1024 wide, the demo model's 256), and rows
// reading their images' states from slots (lines in flight).
TYPED_TEST(CudaHalfKernels, FoldedAttentionMatchesTheCpu) {
  using T = TypeParam;
  for (const auto& [images, rows, keys, width] :
       {std::array<int, 4>{200, 16, 577, 768}, std::array<int, 4>{1, 16, 577, 768}, std::array<int, 4>{3, 8, 45, 384},
        std::array<int, 4>{2, 16, 577, 1024}, std::array<int, 4>{140, 16, 33, 1024}, std::array<int, 4>{5, 4, 577, 256}}) {
    // Lines in flight read their images' states from slots: row i from slot slots[i] (here the
    // rows' images reversed within a buffer of images + 1 slots; slot 0 is never read).
    const bool by_slot = width == 256;
    std::vector<int> slots(images);
    for (int i = 0; i < images; ++i) slots[i] = images - i;
    const int state_slots = by_slot ? images + 1 : images;
    const auto queries = rounded<T>(random_values(size_t(images) * rows * width, this->generator_, 0.3f));
    const auto states = rounded<T>(random_values(size_t(state_slots) * keys * width, this->generator_));
    auto d_queries = to_device<T>(queries);
    auto d_states = to_device<T>(states);
    DeviceBuffer<int> d_slots;
    d_slots.upload(slots);
    DeviceBuffer<T> mix(size_t(images) * rows * width);
    DeviceBuffer<float> scratch(cuda::folded_attention_scratch_size(images, rows, width));
    const float scale = 0.125f;
    const cuda::FoldedAttentionParams params{scratch.data(), images, rows, keys, width, scale,
                                             by_slot ? d_slots.data() : nullptr};
    const bool launched = cuda::folded_attention<T>(params, d_queries.data(), d_states.data(), mix.data(), nullptr);
    ASSERT_TRUE(launched);
    cuda::FoldedAttentionParams odd = params;
    odd.width = 640;
    EXPECT_FALSE(cuda::folded_attention<T>(odd, d_queries.data(), d_states.data(), mix.data(), nullptr));
    std::vector<float> expected(size_t(images) * rows * width);
    cpu::AttentionShape shape;
    shape.queries = rows;
    shape.keys = keys;
    shape.heads = 1;
    shape.head_dim = shape.q_stride = shape.kv_stride = width;
    shape.scale = scale;
    for (int i = 0; i < images; ++i) {
      const float* image_states = states.data() + size_t(by_slot ? slots[i] : i) * keys * width;
      cpu::attention(queries.data() + size_t(i) * rows * width, image_states, image_states, shape,
                     expected.data() + size_t(i) * rows * width);
    }
    EXPECT_LE(relative_error(to_host(mix), expected), tolerance<T>() * 2)
        << images << " images, " << rows << " rows, " << keys << " keys, width " << width;
  }
}

// The CPU engine's attention over the encoder's QKV rows [batch * sequence, 3 * heads * dim]:
// the oracle of the GPU's encoder attention kernels.
std::vector<float> cpu_encoder_attention(const std::vector<float>& qkv, int batch, int sequence, int heads, int dim,
                                         float scale) {
  const int width = heads * dim;
  std::vector<float> expected(size_t(batch) * sequence * width);
  cpu::AttentionShape shape;
  shape.queries = shape.keys = sequence;
  shape.heads = heads;
  shape.head_dim = dim;
  shape.q_stride = shape.kv_stride = 3 * width;
  shape.scale = scale;
  for (int b = 0; b < batch; ++b) {
    const float* image = qkv.data() + size_t(b) * sequence * 3 * width;
    cpu::attention(image, image + width, image + 2 * width, shape, expected.data() + size_t(b) * sequence * width);
  }
  return expected;
}

TYPED_TEST(CudaHalfKernels, FusedEncoderAttentionMatchesTheCpu) {
  using T = TypeParam;
  const int heads = 3, dim = 64, width = heads * dim, batch = 2;
  // ViT's 577 (a last key tile of one key, a last warp with one query), one partial tile, one full,
  // a last key tile of exactly 16 keys (144) and of 17 (145, whose last warp has one query in its
  // second row tile), a warp with one query in its first (161), a block with a single query (129).
  for (int sequence : {577, 37, 64, 144, 145, 161, 129}) {
    const auto qkv = rounded<T>(random_values(size_t(batch) * sequence * 3 * width, this->generator_));
    auto d_qkv = to_device<T>(qkv);
    DeviceBuffer<T> out(size_t(batch) * sequence * width);
    const float scale = 1.0f / std::sqrt(float(dim));
    EXPECT_FALSE(cuda::encoder_attention<T>(d_qkv.data(), batch, sequence, heads, 32, scale, out.data(), nullptr))
        << "only 64-wide heads";
    const std::vector<float> expected = cpu_encoder_attention(qkv, batch, sequence, heads, dim, scale);
    for (int row_tiles : {1, 2, 0}) {  // one and two 16-query tiles per warp, then the launcher's choice
      ASSERT_TRUE(cuda::encoder_attention<T>(d_qkv.data(), batch, sequence, heads, dim, scale, out.data(), nullptr,
                                             row_tiles));
      EXPECT_LE(relative_error(to_host(out), expected), tolerance<T>() * 2)
          << "sequence " << sequence << ", row tiles " << row_tiles;
    }
  }
}

TYPED_TEST(CudaHalfKernels, CudnnAttentionMatchesTheCpu) {
  using T = TypeParam;
  std::string why;
  if (!cuda::CudnnAttention::available(&why)) GTEST_SKIP() << "cuDNN's fused attention: " << why;
  const int heads = 3, max_batch = 3;
  // ViT's 577 tokens and two short ones; heads of 64 (ours takes them too) and of 32 (only cuDNN's).
  for (int dim : {64, 32}) {
    for (int sequence : {577, 37, 145}) {
      const int width = heads * dim;
      const float scale = 1.0f / std::sqrt(float(dim));
      cuda::CudnnAttention attention(cuda::DataType<T>::dtype, sequence, heads, dim, scale, max_batch);
      const auto qkv = rounded<T>(random_values(size_t(max_batch) * sequence * 3 * width, this->generator_));
      auto d_qkv = to_device<T>(qkv);
      const std::vector<float> expected = cpu_encoder_attention(qkv, max_batch, sequence, heads, dim, scale);
      DeviceBuffer<T> out(size_t(max_batch) * sequence * width);
      attention.run(d_qkv.data(), max_batch, out.data(), nullptr);
      const std::vector<float> together = to_host(out);
      EXPECT_LE(relative_error(together, expected), tolerance<T>() * 2)
          << "sequence " << sequence << ", heads of " << dim;
      // An image's output must not depend on the batch it came in (lines in flight join in
      // batches of any size): each image alone gives the same bits.
      const size_t image_elements = size_t(sequence) * width;
      for (int b = 0; b < max_batch; ++b) {
        DeviceBuffer<T> alone(image_elements);
        attention.run(d_qkv.data() + size_t(b) * sequence * 3 * width, 1, alone.data(), nullptr);
        const std::vector<float> single = to_host(alone);
        EXPECT_TRUE(std::equal(single.begin(), single.end(), together.begin() + b * image_elements))
            << "image " << b << " alone differs from its batch's (sequence " << sequence << ", heads of " << dim << ")";
      }
      EXPECT_ERROR_CONTAINS(attention.prepare(max_batch + 1), "cuDNN attention: 4 images, planned for 1-3");
    }
  }
}

TEST(CudaDecodingKernels, GreedySelectAppliesProcessorsLikeTheCpu) {
  TROCR_SKIP_WITHOUT_GPU();
  std::mt19937 generator(11);
  const int rows = 3, vocab = 1000, max_length = 12, position = 4, eos = 2, pad = 1;
  auto logits = random_values(size_t(rows) * vocab, generator);
  // Row 0: eos is best but min_length bans it. Row 1: token 7 is best but completes a
  // repeated bigram. Row 2 is finished and must receive pad.
  logits[0 * vocab + eos] = 50.0f;
  logits[0 * vocab + 9] = 40.0f;
  logits[1 * vocab + 7] = 50.0f;
  logits[1 * vocab + 8] = 40.0f;
  std::vector<int> history(size_t(rows) * max_length, pad);
  const std::vector<int> prefix[] = {{0, 5, 6, 5, 6}, {0, 3, 7, 4, 3}, {0, 5, 2, 1, 1}};
  for (int r = 0; r < rows; ++r) std::copy(prefix[r].begin(), prefix[r].end(), history.begin() + r * max_length);
  DeviceBuffer<int> d_history, d_finished, d_position;
  DeviceBuffer<float> d_logits, sum_log, sum_probability, min_probability;
  d_history.upload(history);
  d_finished.upload(std::vector<int>{0, 0, 1});
  d_position.upload(std::vector<int>{position});
  d_logits.upload(logits);
  sum_log.upload(std::vector<float>(rows, 0.0f));
  sum_probability.upload(std::vector<float>(rows, 0.0f));
  min_probability.upload(std::vector<float>(rows, 1.0f));
  DeviceBuffer<int> d_images;
  d_images.upload(std::vector<int>{0, 1, 2});
  cuda::GreedyParams params{rows, d_images.data(), vocab, max_length, 8, eos, pad, 2,
                            cuda::StepPositions{d_position.data()}, d_history.data(), d_finished.data(), sum_log.data(), sum_probability.data(),
                            min_probability.data()};
  cuda::greedy_select(params, d_logits.data(), nullptr);
  const auto result = d_history.download();
  EXPECT_EQ(result[0 * max_length + 5], 9);  // eos banned (length 5 < 8), 5->6 repeats ban 6 only
  EXPECT_EQ(result[1 * max_length + 5], 8);  // 3 -> 7 already seen: 7 banned
  EXPECT_EQ(result[2 * max_length + 5], pad);
  // The reported probability is the CPU softmax of the processed scores.
  std::vector<float> row(logits.begin() + vocab, logits.begin() + 2 * vocab);
  row[7] = -INFINITY;
  row[eos] = -INFINITY;
  double total = 0.0;
  for (float s : row) total += std::exp(double(s) - 40.0);
  EXPECT_NEAR(sum_probability.download()[1], 1.0 / total, 1e-5);
  // A shrunk batch: row 0 now decodes sequence 1 (its logits in row 0), and the next input
  // tokens are gathered through the same map.
  DeviceBuffer<int> d_shrunk, d_tokens(1);
  d_shrunk.upload(std::vector<int>{1});
  d_history.upload(history);
  DeviceBuffer<float> shrunk_logits;
  shrunk_logits.upload(std::vector<float>(logits.begin() + vocab, logits.begin() + 2 * vocab));
  cuda::GreedyParams shrunk = params;
  shrunk.rows = 1;
  shrunk.images = d_shrunk.data();
  cuda::greedy_select(shrunk, shrunk_logits.data(), nullptr);
  d_position.upload(std::vector<int>{position + 1});
  cuda::gather_last_tokens(d_history.data(), d_shrunk.data(), 1, max_length, cuda::StepPositions{d_position.data()},
                           d_tokens.data(), nullptr);
  EXPECT_EQ(d_history.download()[1 * max_length + 5], 8);
  EXPECT_EQ(d_history.download()[0 * max_length + 5], pad) << "sequence 0 is not in the batch";
  EXPECT_EQ(d_tokens.download(), std::vector<int>{8});
}

// Greedy lines in flight: each row chooses, advances and gathers at its own sequence's position,
// and lines joining start over in their slot.
TEST(CudaDecodingKernels, GreedyLinesStepAtTheirOwnPositions) {
  TROCR_SKIP_WITHOUT_GPU();
  const int vocab = 50, max_length = 10, eos = 2, pad = 1, start = 0;
  // Sequence 0 holds 7 tokens (position 6), sequence 1 holds 4 (position 3), sequence 2 is free.
  std::vector<int> history(3 * max_length, pad);
  const std::vector<int> prefix0 = {0, 11, 12, 13, 14, 15, 16}, prefix1 = {0, 21, 22, 23};
  std::copy(prefix0.begin(), prefix0.end(), history.begin());
  std::copy(prefix1.begin(), prefix1.end(), history.begin() + max_length);
  std::vector<float> logits(2 * vocab, 0.0f);
  logits[0 * vocab + 30] = 5.0f;  // row 0 decodes sequence 1
  logits[1 * vocab + 40] = 5.0f;  // row 1 decodes sequence 0
  DeviceBuffer<int> d_history, d_finished, d_positions, d_images, d_tokens(2);
  DeviceBuffer<float> d_logits, sum_log, sum_probability, min_probability;
  d_history.upload(history);
  d_finished.upload(std::vector<int>{0, 0, 1});
  d_positions.upload(std::vector<int>{6, 3, 9});
  d_images.upload(std::vector<int>{1, 0});
  d_logits.upload(logits);
  sum_log.upload(std::vector<float>{-1.0f, -2.0f, -3.0f});
  sum_probability.upload(std::vector<float>{1.0f, 2.0f, 3.0f});
  min_probability.upload(std::vector<float>{0.5f, 0.5f, 0.5f});
  const cuda::StepPositions positions{d_positions.data(), d_images.data()};
  cuda::GreedyParams params{2, d_images.data(), vocab, max_length, 0, eos, pad, 0, positions, d_history.data(),
                            d_finished.data(), sum_log.data(), sum_probability.data(), min_probability.data()};
  cuda::greedy_select(params, d_logits.data(), nullptr);
  cuda::advance_position(positions, 2, nullptr);
  cuda::gather_last_tokens(d_history.data(), d_images.data(), 2, max_length, positions, d_tokens.data(), nullptr);
  const auto after = d_history.download();
  EXPECT_EQ(after[1 * max_length + 4], 30);
  EXPECT_EQ(after[0 * max_length + 7], 40);
  EXPECT_EQ(d_positions.download(), (std::vector<int>{7, 4, 9})) << "the free sequence does not move";
  EXPECT_EQ(d_tokens.download(), (std::vector<int>{30, 40}));
  // Sequence 2 and 0 start over (lines admitted into freed slots); sequence 1 keeps its state.
  DeviceBuffer<int> d_lines;
  d_lines.upload(std::vector<int>{0, 2});
  const cuda::StartLinesParams restart{d_lines.data(), 2, max_length, start, pad, d_history.data(), d_finished.data(),
                                       sum_log.data(), sum_probability.data(), min_probability.data(),
                                       d_positions.data()};
  cuda::start_greedy_lines(restart, nullptr);
  const auto restarted = d_history.download();
  for (int line : {0, 2}) {
    std::vector<int> expected(max_length, pad);
    expected[0] = start;
    EXPECT_EQ(std::vector<int>(restarted.begin() + line * max_length, restarted.begin() + (line + 1) * max_length),
              expected) << "line " << line;
  }
  EXPECT_EQ(restarted[1 * max_length + 4], 30);
  EXPECT_EQ(d_positions.download(), (std::vector<int>{0, 4, 0}));
  EXPECT_EQ(d_finished.download(), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(sum_log.download(), (std::vector<float>{0.0f, sum_log.download()[1], 0.0f}));
  EXPECT_EQ(min_probability.download(), (std::vector<float>{1.0f, min_probability.download()[1], 1.0f}));
  EXPECT_LT(sum_log.download()[1], -2.0f) << "sequence 1 kept its sum and added its token's";
}

// A beam search's rows come in runs of `beams` rows per image (per_row: row -> image), and each
// image's position moves once per step however many beams it has.
TEST(CudaDecodingKernels, AdvancePositionMovesEachImageOnce) {
  TROCR_SKIP_WITHOUT_GPU();
  DeviceBuffer<int> d_positions, d_images;
  d_positions.upload(std::vector<int>{5, 2, 7, 0});
  d_images.upload(std::vector<int>{3, 3, 3, 1, 1, 1});
  cuda::advance_position({d_positions.data(), d_images.data()}, 6, nullptr, 3);
  EXPECT_EQ(d_positions.download(), (std::vector<int>{5, 3, 7, 1}));
}

// HF's processors over each row's sequence on the device (rows reading slots out of order),
// against logits_processors.h on the host.
TEST(CudaDecodingKernels, BeamTopKMatchesTheCpu) {
  TROCR_SKIP_WITHOUT_GPU();
  std::mt19937 generator = seeded_generator();
  const int rows = 6, slots = 8, vocab = 11003, k = 8, max_length = 12, position = 6;
  const int ngram = 2, min_length = 9, eos = 2;
  const auto logits = random_values(size_t(rows) * vocab, generator, 4.0f);
  const auto running = random_values(slots, generator, 5.0f);
  const std::vector<int> row_slots = {7, 0, 3, 3, 5, 1};
  // Slot sequences of their own position + 1 tokens (lines in flight stand at different
  // positions; the kernel reads slot s's at values[s]); the last token repeats an earlier one,
  // and that earlier one is followed by the row's best logit, so no_repeat_ngram must ban the
  // winner.
  std::vector<int> slot_positions(slots);
  for (int slot = 0; slot < slots; ++slot) slot_positions[slot] = position - slot % 3;
  std::vector<int> history(size_t(slots) * max_length, 0);
  std::uniform_int_distribution<int> token(3, vocab - 1);
  for (int slot = 0; slot < slots; ++slot) {
    for (int i = 0; i <= slot_positions[slot]; ++i) history[slot * max_length + i] = token(generator);
  }
  for (int r = 0; r < rows; ++r) {
    const float* x = logits.data() + size_t(r) * vocab;
    int* sequence = history.data() + row_slots[r] * max_length;
    sequence[slot_positions[row_slots[r]]] = sequence[2];
    sequence[3] = int(std::max_element(x, x + vocab) - x);
  }
  std::vector<std::vector<int>> banned(rows);
  for (int r = 0; r < rows; ++r) {
    const int* sequence = history.data() + row_slots[r] * max_length;
    banned[r] = banned_tokens({sequence, sequence + slot_positions[row_slots[r]] + 1}, min_length, eos, ngram);
  }
  std::vector<float> row_running(rows);
  for (int r = 0; r < rows; ++r) row_running[r] = running[row_slots[r]];

  DeviceBuffer<float> d_logits, d_running, values(rows * k);
  DeviceBuffer<int> d_history, d_slots, d_position, tokens(rows * k);
  d_logits.upload(logits);
  d_running.upload(running);
  d_history.upload(history);
  d_slots.upload(row_slots);
  d_position.upload(slot_positions);
  {
    cuda::BeamTopKParams params{rows, vocab, k, d_running.data(), values.data(), tokens.data()};
    params.row_slots = d_slots.data();
    params.history = d_history.data();
    params.position = {d_position.data(), d_slots.data()};
    params.max_length = max_length;
    params.min_length = min_length;
    params.eos = eos;
    params.no_repeat_ngram_size = ngram;
    cuda::beam_top_k(params, d_logits.data(), nullptr);
    const auto got_values = values.download();
    const auto got_tokens = tokens.download();
    std::vector<float> row(vocab);
    for (int r = 0; r < rows; ++r) {
      ASSERT_GE(banned[r].size(), 2u) << "eos and the repeated bigram's token";
      const float* x = logits.data() + size_t(r) * vocab;
      const float largest = *std::max_element(x, x + vocab);
      double total = 0.0;
      for (int t = 0; t < vocab; ++t) total += std::exp(double(x[t]) - largest);
      for (int t = 0; t < vocab; ++t) row[t] = float((x[t] - largest) - std::log(total)) + row_running[r];
      for (int t : banned[r]) row[t] = -INFINITY;
      std::vector<int> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      for (int i = 0; i < k; ++i) {
        EXPECT_EQ(got_tokens[r * k + i], order[i]) << "row " << r << " rank " << i;
        EXPECT_NEAR(got_values[r * k + i], row[order[i]], 1e-4) << "row " << r;
      }
    }
  }
}

// Caches follow their beams in place: slot j of an image takes what slot parents[j] had, for
// the positions asked (one for every image, or each image's own, as lines in flight have);
// other positions, frozen (identity) images and a stopped search stay.
TEST(CudaDecodingKernels, PermuteBeamCachesMovesEachBeamsPrefix) {
  TROCR_SKIP_WITHOUT_GPU();
  for (const bool per_image : {false, true}) {
    for (const int beams : {3, 20}) {  // registers, and the wide path for many beams
      for (const int width : {8, 3}) {  // 16-byte units, and single bytes (6-byte rows)
        const int images = 3, slots = images * beams, max_positions = 7, caches = 2;
        const std::vector<int> image_positions = per_image ? std::vector<int>{2, 6, 5} : std::vector<int>{4};
        const auto position_of = [&](int image) { return image_positions[per_image ? image : 0]; };
        const size_t per_cache = size_t(slots) * max_positions * width;
        // 2-byte elements, as fp16 caches have; distinct values so that every move shows.
        std::vector<std::vector<uint16_t>> host(caches, std::vector<uint16_t>(per_cache));
        std::vector<DeviceBuffer<uint16_t>> device(caches);
        std::vector<void*> pointers;
        for (int c = 0; c < caches; ++c) {
          for (size_t i = 0; i < per_cache; ++i) host[c][i] = static_cast<uint16_t>(c * 7919 + i);
          device[c].upload(host[c]);
          pointers.push_back(device[c].data());
        }
        std::mt19937 generator(beams * 10 + width);
        std::vector<int> parents(slots);
        for (int slot = 0; slot < slots; ++slot) parents[slot] = std::uniform_int_distribution<int>(0, beams - 1)(generator);
        for (int j = 0; j < beams; ++j) parents[1 * beams + j] = j;  // image 1: frozen
        // Blocks cover images 2 and 0 (row_images of two active images, rows image-major).
        std::vector<int> row_images;
        for (int image : {2, 0}) row_images.insert(row_images.end(), beams, image);
        DeviceBuffer<void*> d_pointers;
        DeviceBuffer<int> d_parents, d_images, d_position, d_stop;
        d_pointers.upload(pointers);
        d_parents.upload(parents);
        d_images.upload(row_images);
        d_position.upload(image_positions);
        d_stop.upload(std::vector<int>{1});
        cuda::PermuteCachesParams params{beams, d_parents.data(), d_images.data(),
                                         {d_position.data(), per_image ? d_images.data() : nullptr}};
        params.slot_bytes = int64_t(max_positions) * width * sizeof(uint16_t);
        params.position_bytes = int64_t(width) * sizeof(uint16_t);
        params.stop = d_stop.data();
        cuda::permute_beam_caches(params, d_pointers.data(), caches, 2, max_positions, nullptr);
        for (int c = 0; c < caches; ++c) {
          EXPECT_EQ(device[c].download(), host[c]) << "a stopped search moves nothing";
        }
        d_stop.upload(std::vector<int>{0});
        cuda::permute_beam_caches(params, d_pointers.data(), caches, 2, max_positions, nullptr);
        for (int c = 0; c < caches; ++c) {
          std::vector<uint16_t> expected = host[c];
          for (int image : {0, 2}) {
            for (int j = 0; j < beams; ++j) {
              const int slot = image * beams + j, parent = image * beams + parents[slot];
              for (int e = 0; e < (position_of(image) + 1) * width; ++e) {
                expected[size_t(slot) * max_positions * width + e] = host[c][size_t(parent) * max_positions * width + e];
              }
            }
          }
          EXPECT_EQ(device[c].download(), expected) << "beams " << beams << " width " << width << " per image " << per_image;
        }
      }
    }
  }
}

}  // namespace
}  // namespace trocr::test

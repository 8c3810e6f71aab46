// The "fp8" dtype's pieces against host arithmetic: rows to E4M3 with a scale each (the scale
// and every value checked against cuda_fp8.h's host conversion and E4M3's rounding bound), and
// cuBLASLt's row-scaled E4M3 product against an fp64 product of the dequantized operands. Skips
// without a GPU; the product also below compute capability 9.0.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cpu/activation.h"
#include "cuda/kernel_choice.h"
#include "cuda/gemm.h"
#include "cuda/kernels/kernels.h"
#include "support/device_values.h"
#include "support/gpu_test.h"
#include "support/test_support.h"
#include "trocr/error.h"

namespace trocr::test {
namespace {

constexpr float kE4M3Max = 448.0f;

float e4m3_value(uint8_t bits) {
  __nv_fp8_e4m3 value;
  std::memcpy(&value, &bits, 1);
  return static_cast<float>(value);
}

uint8_t e4m3_bits(float value) {
  const __nv_fp8_e4m3 converted(value);  // round to nearest even, saturating to +-448
  uint8_t bits;
  std::memcpy(&bits, &converted, 1);
  return bits;
}

// Rows whose magnitudes differ by up to 10^4, one of them all zeros.
std::vector<float> uneven_rows(int rows, int width, std::mt19937& generator) {
  std::vector<float> values = random_values(size_t(rows) * width, generator);
  for (int r = 0; r < rows; ++r) {
    const float magnitude = r == 1 ? 0.0f : std::pow(10.0f, float(r % 5) - 2.0f);
    for (int c = 0; c < width; ++c) values[size_t(r) * width + c] *= magnitude;
  }
  return values;
}

TEST(CudaFp8Products, QuantizeRowsKeepsEachRowsScaleAndRounding) {
  TROCR_SKIP_WITHOUT_GPU();
  std::mt19937 generator = seeded_generator();
  for (int width : {8, 264, 768, 1544, 4096, 8192}) {
    for (bool gelu : {false, true}) {
      const int rows = 13;
      const std::vector<float> x = rounded<__half>(uneven_rows(rows, width, generator));
      std::vector<float> activated = x;
      if (gelu) cpu::apply_activation(Activation::Gelu, activated.data(), activated.size());
      auto dx = to_device<__half>(x);
      DeviceBuffer<__nv_fp8_e4m3> values(x.size());
      DeviceBuffer<float> scales(rows);
      cuda::quantize_rows<__half>(dx.data(), rows, width, gelu ? std::optional{Activation::Gelu} : std::nullopt,
                                  values.data(), scales.data(), nullptr);
      const std::vector<__nv_fp8_e4m3> got = values.download();
      const std::vector<float> got_scales = scales.download();
      int wrong_bits = 0;
      for (int r = 0; r < rows; ++r) {
        float largest = 0.0f;
        for (int c = 0; c < width; ++c) largest = std::max(largest, std::fabs(activated[size_t(r) * width + c]));
        const float scale = largest > 0.0f ? largest / kE4M3Max : 1.0f;
        const float inverse = largest > 0.0f ? kE4M3Max / largest : 1.0f;
        // The device's erff and the host's erf part slightly: with GELU the scale may differ by a
        // few 1e-6 (4e-6 seen in 300 random runs), and a value may land on the other side of a
        // rounding boundary.
        EXPECT_NEAR(got_scales[r], scale, (gelu ? 2e-5f : 1e-6f) * scale) << "width " << width << " row " << r;
        for (int c = 0; c < width; ++c) {
          const size_t i = size_t(r) * width + c;
          uint8_t bits;
          std::memcpy(&bits, &got[i], 1);
          if (bits != e4m3_bits(activated[i] * inverse)) ++wrong_bits;
          // E4M3 keeps 3 mantissa bits: within half an ulp, 2^-4 relative; subnormals 2^-10 of the
          // scale. In GELU's negative tail 1 + erf cancels, and the device's erff and the host's erf
          // part by up to ~|x| * 6e-8 (5 of 60 random runs needed more than the bound alone).
          const float restored = e4m3_value(bits) * got_scales[r];
          const float erf_parting = gelu ? 1e-7f * std::fabs(x[i]) : 0.0f;
          const float bound = std::max(std::fabs(activated[i]) / 16.0f, scale / 1024.0f) * 1.001f + erf_parting;
          ASSERT_LE(std::fabs(restored - activated[i]), bound)
              << "width " << width << " row " << r << " column " << c << (gelu ? " gelu" : "");
        }
      }
      if (gelu) {
        EXPECT_LE(wrong_bits, 1 + int(x.size() / 1000)) << "width " << width << " gelu";
      } else {
        EXPECT_EQ(wrong_bits, 0) << "width " << width;
      }
    }
  }
  DeviceBuffer<__half> unused(16);
  DeviceBuffer<__nv_fp8_e4m3> out(16);
  DeviceBuffer<float> scale(1);
  EXPECT_THROW(cuda::quantize_rows<__half>(unused.data(), 1, 12, std::nullopt, out.data(), scale.data(), nullptr), Error);
}

TEST(CudaFp8Products, RowScaledProductMatchesTheDequantizedProduct) {
  TROCR_SKIP_WITHOUT_GPU();
  if (cuda::compute_capability() < 90) GTEST_SKIP() << "E4M3 products with row scales need compute capability 9.0";
  std::mt19937 generator = seeded_generator();
  std::uniform_real_distribution<float> positive(0.01f, 2.0f);
  for (auto [m, n, k] : {std::tuple{577, 768, 768}, std::tuple{5, 64, 32}, std::tuple{300, 48, 3072}}) {
    // E4M3 operands from random values, and scales of their own per row (sums stay well inside
    // fp16's range).
    const auto quantized = [&](int rows, int width, std::vector<uint8_t>& bits, std::vector<float>& scales) {
      const std::vector<float> values = random_values(size_t(rows) * width, generator, 4.0f);
      bits.resize(values.size());
      for (size_t i = 0; i < values.size(); ++i) bits[i] = e4m3_bits(values[i]);
      scales.resize(rows);
      for (float& scale : scales) scale = positive(generator);
    };
    std::vector<uint8_t> a_bits, b_bits;
    std::vector<float> a_scales, b_scales;
    quantized(m, k, a_bits, a_scales);
    quantized(n, k, b_bits, b_scales);
    const std::vector<float> bias = rounded<__half>(random_values(n, generator, 10.0f));
    std::vector<float> expected(size_t(m) * n);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double sum = 0.0;
        for (int p = 0; p < k; ++p) {
          sum += double(e4m3_value(a_bits[size_t(i) * k + p])) * e4m3_value(b_bits[size_t(j) * k + p]);
        }
        expected[size_t(i) * n + j] = float(sum * a_scales[i] * b_scales[j] + bias[j]);
      }
    }
    const auto upload_bits = [](const std::vector<uint8_t>& bits) {
      std::vector<__nv_fp8_e4m3> values(bits.size());
      std::memcpy(static_cast<void*>(values.data()), bits.data(), bits.size());
      DeviceBuffer<__nv_fp8_e4m3> buffer;
      buffer.upload(values);
      return buffer;
    };
    auto da = upload_bits(a_bits), db = upload_bits(b_bits);
    DeviceBuffer<float> dsa, dsb;
    dsa.upload(a_scales);
    dsb.upload(b_scales);
    auto dbias = to_device<__half>(bias);
    DeviceBuffer<__half> dy(expected.size());
    cuda::Gemm gemm(nullptr);
    gemm.matmul_row_scaled<__half>(cuda::MatmulShape::linear(m, n, k), da.data(), dsa.data(), db.data(), dsb.data(), dy.data(), dbias.data());
    EXPECT_LE(relative_error(to_host(dy), expected), tolerance<__half>()) << m << "x" << n << "x" << k;
  }
}

}  // namespace
}  // namespace trocr::test

// GPU weight conversion against the CPU conversion, on random values of awkward counts.
// Skips itself where there is no GPU (CI).
#include <cuda_runtime.h>

#include <random>

#include "common/dtype.h"
#include "cuda/convert_kernels.h"
#include "support/gpu_test.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TROCR_SKIP_WITHOUT_GPU();
  }
};

TEST_F(CudaTest, FloatToHalfAndBfloat16MatchTheCpu) {
  std::mt19937 generator(5);
  std::normal_distribution<float> normal(0.0f, 30.0f);
  for (size_t count : {size_t{1}, size_t{255}, size_t{1000003}}) {
    std::vector<float> values(count);
    for (auto& value : values) value = normal(generator);
    values[0] = 70000.0f;  // overflows fp16
    float* device_values;
    uint16_t* device_out;
    ASSERT_EQ(cudaMalloc(&device_values, count * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&device_out, count * 2), cudaSuccess);
    cudaMemcpy(device_values, values.data(), count * 4, cudaMemcpyHostToDevice);
    std::vector<uint16_t> out(count);
    for (bool half : {true, false}) {
      cudaMemset(device_out, 0xAB, count * 2);  // poison: every element must be written
      if (half) {
        convert_float_to_half(device_values, device_out, count, nullptr);
      } else {
        convert_float_to_bfloat16(device_values, device_out, count, nullptr);
      }
      ASSERT_EQ(cudaMemcpy(out.data(), device_out, count * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      size_t mismatches = 0;
      for (size_t i = 0; i < count; ++i) {
        const uint16_t expected = half ? float_to_half(values[i]) : float_to_bfloat16(values[i]);
        mismatches += out[i] != expected;
      }
      EXPECT_EQ(mismatches, 0u) << (half ? "fp16" : "bf16") << " count " << count;
    }
    cudaFree(device_values);
    cudaFree(device_out);
  }
}

}  // namespace
}  // namespace trocr::test

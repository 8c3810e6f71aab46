// The demo model on the GPU: fp32 reads the evaluation set exactly as HF fp32 does; fp16 and
// bf16 agreement with HF fp32 is measured and printed (trained weights, unlike the random
// goldens, leave few near-ties, so nearly every line must agree). Skips without a GPU.
#include <algorithm>

#include "cuda/device_info.h"
#include "support/demo_eval.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

struct DemoCase {
  const char* dtype;
  double identical_share;  // lines with HF fp32's text, at least
  double cer;              // against the labels, at most
  // "default"; "fallback": the GEMM encoder attention and chunked cross-attention; "folded":
  // greedy's cross-attention over the encoder output; "host-beams": beam bookkeeping on the host.
  const char* kernels = "default";
};

class CudaDemo : public ::testing::TestWithParam<DemoCase> {};

TEST_P(CudaDemo, ReadsTheEvaluationSetAsHfDoes) {
  if (list_cuda_devices().empty()) GTEST_SKIP() << "no CUDA device";
  const DemoCase demo = GetParam();
  EngineOptions options;
  options.device = "cuda";
  options.dtype = demo.dtype;
  options.batch_size = 64;
  const std::string kernels = demo.kernels;
  options.fused_encoder_attention = options.grouped_cross_attention = kernels != "fallback";
  options.folded_cross_attention = kernels == "folded";
  options.device_beam_search = kernels != "host-beams";
  for (const char* setting : {"default", "greedy"}) {
    const DemoComparison result = compare_demo_with_hf(options, setting, 0);
    std::printf("demo model, %s, CUDA %s%s: %zu/%zu texts and %zu ids identical to HF fp32, CER %.4f (HF %.4f)\n",
                setting, demo.dtype, kernels == "default" ? "" : (" (" + kernels + " kernels)").c_str(), result.identical_text,
                result.lines, result.identical_ids, result.cer, result.hf_cer);
    if (demo.identical_share == 1.0) {
      for (const auto& difference : result.differences) ADD_FAILURE() << setting << " " << difference;
      EXPECT_EQ(result.identical_ids, result.lines) << setting;
    }
    EXPECT_GE(result.identical_text, demo.identical_share * result.lines) << setting;
    EXPECT_LE(result.cer, demo.cer) << setting;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaDemo,
                         ::testing::Values(DemoCase{"fp32", 1.0, 0.02}, DemoCase{"fp16", 0.98, 0.025},
                                           DemoCase{"bf16", 0.95, 0.03}, DemoCase{"fp16", 0.98, 0.025, "fallback"},
                                           DemoCase{"bf16", 0.95, 0.03, "fallback"}, DemoCase{"fp32", 1.0, 0.02, "folded"},
                                           DemoCase{"fp16", 0.98, 0.025, "folded"},
                                           DemoCase{"fp32", 1.0, 0.02, "host-beams"}),
                         [](const auto& info) {
                           const std::string kernels = info.param.kernels;
                           std::string name = std::string(info.param.dtype) + (kernels == "default" ? "" : "_" + kernels);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace trocr::test

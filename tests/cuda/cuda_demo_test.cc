// The demo model on the GPU: fp32 reads the evaluation set exactly as HF fp32 does; fp16 and
// bf16 agreement with HF fp32 is measured and printed (trained weights, unlike the random
// goldens, leave few near-ties, so nearly every line must agree). Skips without a GPU.
#include <algorithm>
#include <cctype>
#include <optional>

#include "cuda/forced_kernels.h"
#include "support/gpu_test.h"
#include "support/demo_eval.h"
#include "support/near_tie.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

struct DemoCase {
  const char* dtype;
  // Floors with margin under what an H100 and an H200 measured (400/400 lines in fp16, 389-398
  // in bf16, bench/results/*-gpu-tests.log).
  double identical_share;  // lines with HF fp32's text, at least
  double cer;              // against the labels, at most
  // Forced kernel choices (kernel_choice.h); "" leaves them to the ops (and to TROCR_KERNELS).
  const char* kernels = "";
};

// The worst |logit - HF's logit| on the demo model, from the accuracy run on an H100
// (bench/results/2026-11-24-h100-a48a361-accuracy.md: 6.98e-2 in fp16, 0.804 in bf16), with margin.
// fp8 (E4M3 encoder products): 4.87 on the demo model (bench/results/2026-12-01-h200-55d0ae0-accuracy.md).
double demo_worst_logit_error(const std::string& dtype) {
  if (dtype == "fp16") return 0.1;
  return dtype == "fp8" ? 6.0 : 1.0;
}

// Every line where greedy's ids leave HF's must leave at a near-tie of HF's logits.
void expect_greedy_differences_at_near_ties(const DemoComparison& result, const std::string& dtype) {
  if (result.different_ids.empty()) return;
  const Recognizer oracle(demo_model_dir());
  const GenerationConfig settings = demo_generation(oracle, "greedy");
  for (const auto& line : result.different_ids) {
    const auto pixels = preprocess_image(read_image_file(line.path), oracle.preprocess_config());
    expect_divergence_at_near_tie(oracle, pixels, line.hf, line.ours, settings, demo_worst_logit_error(dtype),
                                  "demo " + dtype + " greedy " + line.path);
  }
}

class CudaDemo : public ::testing::TestWithParam<DemoCase> {};

TEST_P(CudaDemo, ReadsTheEvaluationSetAsHfDoes) {
  TROCR_SKIP_WITHOUT_GPU();
  const DemoCase demo = GetParam();
  EngineOptions options;
  options.device = "cuda";
  options.dtype = demo.dtype;
  options.batch_size = 64;
  const std::string kernels = demo.kernels;
  std::optional<ForcedKernels> forced;
  if (!kernels.empty()) forced.emplace(kernels);
  // Lines in flight (64 at once, joining as others end) with the ops' own kernel choices, and
  // attending over the states they keep by slot. "K/V late": lines admitted while their steps
  // attend over the states have no per-layer K/V; from the middle of the set on the steps use the
  // chooser's form (the per-layer K/V for this 256-wide model), which computes theirs then.
  std::vector<std::string> settings = {"default", "greedy"};
  if (kernels.empty() || kernels == "cross_attention=encoder_states") settings.push_back("greedy in flight");
  const bool sixteen_bit = std::string(demo.dtype) == "fp16" || std::string(demo.dtype) == "bf16";
  if (kernels.empty() && sixteen_bit) settings.push_back("greedy in flight, K/V late");
  for (const std::string& setting : settings) {
    std::optional<ForcedKernels> over_states;
    AfterStep after_step;
    if (setting == "greedy in flight, K/V late") {
      over_states.emplace("cross_attention=encoder_states");
      after_step = [&](size_t admitted) {
        if (admitted >= 200) over_states.reset();
      };
    }
    const DemoComparison result =
        compare_demo_with_hf(options, over_states ? "greedy in flight" : setting, 0, after_step);
    std::printf("demo model, %s, CUDA %s%s: %zu/%zu texts and %zu ids identical to HF fp32, CER %.4f (HF %.4f)\n",
                setting.c_str(), demo.dtype, kernels.empty() ? "" : (" (kernels: " + kernels + ")").c_str(), result.identical_text,
                result.lines, result.identical_ids, result.cer, result.hf_cer);
    if (demo.identical_share == 1.0) {
      for (const auto& difference : result.differences) ADD_FAILURE() << setting << " " << difference;
      EXPECT_EQ(result.identical_ids, result.lines) << setting;
    }
    EXPECT_GE(result.identical_text, demo.identical_share * result.lines) << setting;
    if (setting != "default") expect_greedy_differences_at_near_ties(result, demo.dtype);
    EXPECT_LE(result.cer, demo.cer) << setting;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaDemo,
                         ::testing::Values(DemoCase{"fp32", 1.0, 0.02}, DemoCase{"fp16", 0.98, 0.025},
                                           DemoCase{"bf16", 0.95, 0.03}, DemoCase{"fp16", 0.98, 0.025, "portable"},
                                           DemoCase{"bf16", 0.95, 0.03, "portable"},
                                           DemoCase{"fp16", 0.98, 0.025, "cross_attention=encoder_states"},
                                           DemoCase{"fp32", 1.0, 0.02, "beam_bookkeeping=host"},
                                           DemoCase{"fp8", 0.9, 0.04}),
                         [](const auto& info) {
                           const std::string kernels = info.param.kernels;
                           std::string name = std::string(info.param.dtype) + (kernels.empty() ? "" : "_" + kernels);
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace trocr::test

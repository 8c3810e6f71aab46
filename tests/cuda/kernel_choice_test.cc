// The ops' kernel choices (src/cuda/kernel_choice.h) as rules: on which GPUs, dtypes and shapes
// each kernel runs, what forcing a path does, and TROCR_KERNELS's syntax. Pure functions of
// their arguments: these run without a GPU.
#include "cuda/kernel_choice.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

using namespace trocr::cuda;

constexpr int kTuring = 75, kAmpere = 80, kHopper = 90;
// trocr-base's decoder (1024 wide, 16 heads of 64) over projected 1024-wide states; trocr-small's
// (256 wide, 8 heads of 32) over 384-wide states.
struct Decoder {
  int head_dim, d_model, cross_width;
};
constexpr Decoder kBase{64, 1024, 1024}, kSmall{32, 256, 384};

ChoiceContext gpu(int capability, const std::string& forced = "") {
  return {capability, parse_kernel_overrides(forced)};
}
// The same GPU where cuDNN's fused attention loads.
ChoiceContext with_cudnn(int capability, const std::string& forced = "") {
  return {capability, parse_kernel_overrides(forced), true};
}

CrossAttentionKernel cross(DType dtype, const Decoder& decoder, int rows, bool greedy, const ChoiceContext& context,
                           bool key_values_computed = true) {
  return choose_cross_attention(dtype, decoder.head_dim, rows, greedy, decoder.d_model, decoder.cross_width,
                                key_values_computed, context);
}

TEST(KernelChoice, TensorCoreKernelsNeedAmpereAndA16BitDtype) {
  for (DType dtype : {DType::F16, DType::BF16}) {
    EXPECT_EQ(choose_encoder_attention(dtype, 64, gpu(kHopper)), EncoderAttentionKernel::FusedTensorCore);
    EXPECT_EQ(choose_encoder_attention(dtype, 64, gpu(kAmpere)), EncoderAttentionKernel::FusedTensorCore);
    EXPECT_EQ(choose_encoder_attention(dtype, 64, gpu(kTuring)), EncoderAttentionKernel::Gemms);
    EXPECT_EQ(choose_encoder_attention(dtype, 32, gpu(kHopper)), EncoderAttentionKernel::Gemms) << "64-wide heads only";
    EXPECT_EQ(cross(dtype, kBase, 4, false, gpu(kAmpere)), CrossAttentionKernel::GroupedTensorCore);
    EXPECT_EQ(cross(dtype, kBase, 4, false, gpu(kTuring)), CrossAttentionKernel::Chunked);
    EXPECT_TRUE(use_tensor_core_small_linear(dtype, gpu(kAmpere)));
    EXPECT_FALSE(use_tensor_core_small_linear(dtype, gpu(kTuring)));
  }
  EXPECT_EQ(choose_encoder_attention(DType::F32, 64, gpu(kHopper)), EncoderAttentionKernel::Gemms);
  EXPECT_EQ(cross(DType::F32, kBase, 4, false, gpu(kHopper)), CrossAttentionKernel::Chunked);
  EXPECT_FALSE(use_tensor_core_small_linear(DType::F32, gpu(kHopper)));
  EXPECT_TRUE(use_dependent_launch(gpu(kHopper)));
  EXPECT_FALSE(use_dependent_launch(gpu(kAmpere)));
}

TEST(KernelChoice, AttentionOverEncoderStatesForLargeGreedyBatchesOfWideDecoders) {
  EXPECT_EQ(cross(DType::F16, kBase, 256, true, gpu(kHopper)), CrossAttentionKernel::OverEncoderStates);
  EXPECT_EQ(cross(DType::F16, kBase, 96, true, gpu(kHopper)), CrossAttentionKernel::OverEncoderStates);
  EXPECT_EQ(cross(DType::F16, kBase, 64, true, gpu(kHopper)), CrossAttentionKernel::GroupedTensorCore)
      << "measured slower at 64 rows on an H200";
  EXPECT_EQ(cross(DType::F16, kBase, 80, true, gpu(kHopper), /*key_values_computed=*/false),
            CrossAttentionKernel::OverEncoderStates)
      << "rows without K/V keep the form down to where the two meet with the K/V product counted";
  EXPECT_EQ(cross(DType::F16, kBase, 79, true, gpu(kHopper), false), CrossAttentionKernel::GroupedTensorCore);
  EXPECT_EQ(cross(DType::F16, kBase, 256, false, gpu(kHopper), false), CrossAttentionKernel::GroupedTensorCore)
      << "beams have their K/V computed";
  EXPECT_EQ(cross(DType::F16, kBase, 1024, false, gpu(kHopper)), CrossAttentionKernel::GroupedTensorCore)
      << "beam search keeps the per-layer K/V";
  EXPECT_EQ(cross(DType::F16, kSmall, 256, true, gpu(kHopper)), CrossAttentionKernel::GroupedTensorCore)
      << "trocr-small's K/V are narrower than its states";
  EXPECT_EQ(cross(DType::F16, Decoder{64, 256, 256}, 256, true, gpu(kHopper)), CrossAttentionKernel::GroupedTensorCore)
      << "256-wide states (the demo model's) only when forced: not measured";
  EXPECT_EQ(cross(DType::F16, Decoder{64, 256, 256}, 4, true, gpu(kHopper, "cross_attention=encoder_states")),
            CrossAttentionKernel::OverEncoderStates);
  EXPECT_EQ(cross(DType::F32, kBase, 256, true, gpu(kHopper)), CrossAttentionKernel::Chunked);
  EXPECT_EQ(cross(DType::F16, kBase, 256, true, gpu(kTuring)), CrossAttentionKernel::Chunked);
}

TEST(KernelChoice, EncoderAttentionIsCudnnsOnHopper) {
  for (DType dtype : {DType::F16, DType::BF16}) {
    EXPECT_EQ(choose_encoder_attention(dtype, 64, with_cudnn(kHopper)), EncoderAttentionKernel::Cudnn);
    EXPECT_EQ(choose_encoder_attention(dtype, 32, with_cudnn(kHopper)), EncoderAttentionKernel::Cudnn)
        << "heads ours does not take";
    EXPECT_EQ(choose_encoder_attention(dtype, 64, with_cudnn(kAmpere)), EncoderAttentionKernel::FusedTensorCore)
        << "measured on Hopper only";
  }
  EXPECT_EQ(choose_encoder_attention(DType::F16, 160, with_cudnn(kHopper)), EncoderAttentionKernel::Gemms);
  EXPECT_EQ(choose_encoder_attention(DType::F16, 36, with_cudnn(kHopper)), EncoderAttentionKernel::Gemms);
  EXPECT_EQ(choose_encoder_attention(DType::F32, 64, with_cudnn(kHopper)), EncoderAttentionKernel::Gemms);
  EXPECT_EQ(choose_encoder_attention(DType::F16, 64, with_cudnn(kHopper, "portable")), EncoderAttentionKernel::Gemms);
  EXPECT_EQ(choose_encoder_attention(DType::F16, 64, with_cudnn(kHopper, "encoder_attention=fused")),
            EncoderAttentionKernel::FusedTensorCore);
  EXPECT_EQ(choose_encoder_attention(DType::F16, 64, with_cudnn(kHopper, "encoder_attention=cudnn")),
            EncoderAttentionKernel::Cudnn);
  EXPECT_EQ(choose_encoder_attention(DType::F16, 64, gpu(kHopper, "encoder_attention=cudnn")),
            EncoderAttentionKernel::FusedTensorCore)
      << "forced where cuDNN does not load: the rule's own choice";
}

TEST(KernelChoice, ForcedPathsApplyWhereTheyFit) {
  EXPECT_EQ(cross(DType::F16, kBase, 4, true, gpu(kHopper, "cross_attention=encoder_states")),
            CrossAttentionKernel::OverEncoderStates);
  EXPECT_EQ(cross(DType::F16, kBase, 4, false, gpu(kHopper, "cross_attention=encoder_states")),
            CrossAttentionKernel::GroupedTensorCore)
      << "not for beams: the rule's own choice";
  EXPECT_EQ(cross(DType::F32, kBase, 4, false, gpu(kHopper, "cross_attention=grouped")), CrossAttentionKernel::Chunked)
      << "the grouped kernel takes no fp32";
  EXPECT_EQ(cross(DType::F16, kBase, 256, true, gpu(kHopper, "cross_attention=chunked")), CrossAttentionKernel::Chunked);
  EXPECT_EQ(choose_encoder_attention(DType::F16, 64, gpu(kHopper, "encoder_attention=gemms")),
            EncoderAttentionKernel::Gemms);
  EXPECT_EQ(choose_encoder_attention(DType::F32, 64, gpu(kHopper, "encoder_attention=fused")),
            EncoderAttentionKernel::Gemms);
  const ChoiceContext portable = gpu(kHopper, "portable");
  EXPECT_EQ(choose_encoder_attention(DType::F16, 64, portable), EncoderAttentionKernel::Gemms);
  EXPECT_EQ(cross(DType::F16, kBase, 256, true, portable), CrossAttentionKernel::Chunked);
  EXPECT_FALSE(use_tensor_core_small_linear(DType::F16, portable));
  EXPECT_FALSE(use_dependent_launch(portable));
  EXPECT_EQ(choose_beam_bookkeeping(4, 11000, portable), BeamBookkeeping::Host);
}

TEST(KernelChoice, BeamBookkeepingOnTheDeviceUpToSixteenBeams) {
  EXPECT_EQ(choose_beam_bookkeeping(4, 11000, gpu(kTuring)), BeamBookkeeping::Device);
  EXPECT_EQ(choose_beam_bookkeeping(16, 11000, gpu(kHopper)), BeamBookkeeping::Device);
  EXPECT_EQ(choose_beam_bookkeeping(17, 11000, gpu(kHopper)), BeamBookkeeping::Host);
  EXPECT_EQ(choose_beam_bookkeeping(4, 7, gpu(kHopper)), BeamBookkeeping::Host) << "2 * beams tokens needed";
  EXPECT_EQ(choose_beam_bookkeeping(4, 11000, gpu(kHopper, "beam_bookkeeping=host")), BeamBookkeeping::Host);
  EXPECT_EQ(choose_beam_bookkeeping(17, 11000, gpu(kHopper, "beam_bookkeeping=device")), BeamBookkeeping::Host);
}

TEST(KernelChoice, OverridesSyntax) {
  const KernelOverrides both = parse_kernel_overrides("encoder_attention=fused,beam_bookkeeping=host");
  EXPECT_TRUE(both.force_encoder_attention);
  EXPECT_EQ(both.encoder_attention, EncoderAttentionKernel::FusedTensorCore);
  EXPECT_TRUE(both.force_beam_bookkeeping);
  EXPECT_FALSE(both.force_cross_attention);
  EXPECT_FALSE(both.portable);
  EXPECT_FALSE(parse_kernel_overrides("").portable);
  EXPECT_ERROR_CONTAINS(parse_kernel_overrides("portable,cross_attention=fast"),
                        "TROCR_KERNELS: unknown item 'cross_attention=fast'");
}

}  // namespace
}  // namespace trocr::test

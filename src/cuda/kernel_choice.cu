// The CUDA ops' kernel choices (kernel_choice.h). Defaults follow the measurements in
// docs/CUDA_ENGINE.md (H100/H200, fp16): each rule names the figure it rests on.
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include "common/check.h"
#include "cuda/cuda_check.h"
#include "cuda/cudnn_attention.h"
#include "cuda/kernel_choice.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {

KernelOverrides parse_kernel_overrides(const std::string& spec) {
  KernelOverrides overrides;
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    if (item == "portable") {
      overrides.portable = true;
    } else if (item == "encoder_attention=fused" || item == "encoder_attention=cudnn" ||
               item == "encoder_attention=gemms") {
      overrides.force_encoder_attention = true;
      overrides.encoder_attention = item == "encoder_attention=fused"   ? EncoderAttentionKernel::FusedTensorCore
                                    : item == "encoder_attention=cudnn" ? EncoderAttentionKernel::Cudnn
                                                                        : EncoderAttentionKernel::Gemms;
    } else if (item == "cross_attention=grouped" || item == "cross_attention=chunked" ||
               item == "cross_attention=encoder_states") {
      overrides.force_cross_attention = true;
      overrides.cross_attention = item == "cross_attention=grouped"   ? CrossAttentionKernel::GroupedTensorCore
                                  : item == "cross_attention=chunked" ? CrossAttentionKernel::Chunked
                                                                      : CrossAttentionKernel::OverEncoderStates;
    } else if (item == "beam_bookkeeping=device" || item == "beam_bookkeeping=host") {
      overrides.force_beam_bookkeeping = true;
      overrides.beam_bookkeeping = item == "beam_bookkeeping=device" ? BeamBookkeeping::Device : BeamBookkeeping::Host;
    } else {
      fail("TROCR_KERNELS: unknown item '{}' (expected portable, encoder_attention=fused|cudnn|gemms, "
           "cross_attention=grouped|chunked|encoder_states or beam_bookkeeping=device|host)",
           item);
    }
  }
  return overrides;
}

namespace {

std::mutex overrides_mutex;
KernelOverrides* current_overrides = nullptr;

bool is_16_bit(DType dtype) { return dtype == DType::F16 || dtype == DType::BF16; }
bool tensor_cores(const ChoiceContext& context) {
  return !context.forced.portable && context.capability >= kTensorCoreArch;
}

}  // namespace

int compute_capability() {
  static std::array<std::atomic<int>, 64> known{};  // 0: not asked yet
  int device = 0;
  TROCR_CUDA_CHECK(cudaGetDevice(&device));
  if (device >= int(known.size())) fail("CUDA device {}: at most {} devices are supported", device, known.size());
  int capability = known[device].load();
  if (capability == 0) {
    int major = 0, minor = 0;
    TROCR_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    TROCR_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    capability = major * 10 + minor;
    known[device].store(capability);
  }
  return capability;
}

const KernelOverrides& kernel_overrides() {
  const std::lock_guard<std::mutex> lock(overrides_mutex);
  if (current_overrides == nullptr) {
    const char* spec = std::getenv("TROCR_KERNELS");
    current_overrides = new KernelOverrides(parse_kernel_overrides(spec == nullptr ? "" : spec));
  }
  return *current_overrides;
}

void set_kernel_overrides(const std::string& spec) {
  KernelOverrides parsed = parse_kernel_overrides(spec);
  kernel_overrides();  // the first read of TROCR_KERNELS, so that it does not undo this
  const std::lock_guard<std::mutex> lock(overrides_mutex);
  *current_overrides = parsed;
}

int multiprocessor_count() {
  int device = 0, processors = 0;
  TROCR_CUDA_CHECK(cudaGetDevice(&device));
  TROCR_CUDA_CHECK(cudaDeviceGetAttribute(&processors, cudaDevAttrMultiProcessorCount, device));
  return processors;
}

ChoiceContext current_choice_context() {
  return {compute_capability(), kernel_overrides(), CudnnAttention::available()};
}

EncoderAttentionKernel choose_encoder_attention(DType dtype, int head_dim, const ChoiceContext& context) {
  const KernelOverrides& forced = context.forced;
  const bool fused_fits = is_16_bit(dtype) && head_dim == kEncoderAttentionHeadDim && tensor_cores(context);
  // cuDNN's kernels take heads of up to 128 in multiples of 8; measured on Hopper (sm_90) only.
  constexpr int kCudnnAttentionArch = 90;
  const bool cudnn_fits = is_16_bit(dtype) && head_dim % 8 == 0 && head_dim <= 128 && context.cudnn_attention &&
                          tensor_cores(context) && context.capability >= kCudnnAttentionArch;
  const EncoderAttentionKernel wanted = forced.encoder_attention;
  if (forced.force_encoder_attention &&
      ((wanted == EncoderAttentionKernel::FusedTensorCore && fused_fits) ||
       (wanted == EncoderAttentionKernel::Cudnn && cudnn_fits) || wanted == EncoderAttentionKernel::Gemms)) {
    return wanted;
  }
  // cuDNN's wherever it fits: on an H200 its 0.136 ms against our 0.182 for 32 ViT images (-25%),
  // -20 to -40% at 2-24 (20da74f's probe), greedy batch 256 +7% (91653b3). At one image it is 8%
  // slower (0.02 of a 13 ms line), but taken there too: an image's states must not depend on the
  // batch it came in (lines in flight join in batches of any size; the kernel test holds cuDNN's
  // to that). Ours: trocr-base's encoder -30% at batch 64 on an H100 against the GEMMs (50345d5).
  if (cudnn_fits) return EncoderAttentionKernel::Cudnn;
  return fused_fits ? EncoderAttentionKernel::FusedTensorCore : EncoderAttentionKernel::Gemms;
}

CrossAttentionKernel choose_cross_attention(DType dtype, int head_dim, int rows, bool greedy, int d_model,
                                            int cross_width, bool key_values_computed, const ChoiceContext& context) {
  const KernelOverrides& forced = context.forced;
  const bool grouped_fits = is_16_bit(dtype) && (head_dim == 32 || head_dim == 64) && tensor_cores(context);
  const int heads = d_model / head_dim;
  const bool folded_fits = greedy && is_16_bit(dtype) && tensor_cores(context) && heads <= kMaxFoldedHeads &&
                           folded_attention_width_supported(cross_width);
  if (forced.force_cross_attention) {
    const CrossAttentionKernel wanted = forced.cross_attention;
    if ((wanted == CrossAttentionKernel::GroupedTensorCore && grouped_fits) ||
        (wanted == CrossAttentionKernel::OverEncoderStates && folded_fits) || wanted == CrossAttentionKernel::Chunked) {
      return wanted;
    }
  }
  // Over the encoder states when the per-layer K/V (2 * d_model values per key and layer) are
  // much wider than the states, at large batches. trocr-base greedy fp16 on an H200 against the
  // grouped kernel, decoding since the folded kernel's 16-warp blocks (d0e92d7): batch 256
  // 52.7-53.0 against ~70 ms, batch 128 33.5-34.7 against 41.4-42.4, batch 64 31.1 against 28.1;
  // the lines meet at ~80 rows (bench/results/2026-12-01-h200-d0e92d7-folded.md). trocr-small
  // (d_model 256 < 384) slower at every batch (-50345d5-folded-attention.json).
  // Widths below 384 (the demo model's 256) are there for forced runs and tests: not measured.
  // Rows whose K/V are not computed (lines in flight skip them) keep this form down to 80 rows,
  // where the two forms meet with the K/V product counted (interpolated between 64 and 96), so
  // that a line count moving around 96 does not compute admitted images' K/V at every dip.
  const int from_rows = key_values_computed ? 96 : 80;
  if (folded_fits && rows >= from_rows && d_model >= cross_width && cross_width >= 384) {
    return CrossAttentionKernel::OverEncoderStates;
  }
  return grouped_fits ? CrossAttentionKernel::GroupedTensorCore : CrossAttentionKernel::Chunked;
}

BeamBookkeeping choose_beam_bookkeeping(int num_beams, int vocab_size, const ChoiceContext& context) {
  const KernelOverrides& forced = context.forced;
  const bool device_fits = num_beams <= kMaxBeams && 2 * num_beams <= vocab_size;
  if (forced.portable) return BeamBookkeeping::Host;
  if (forced.force_beam_bookkeeping && (device_fits || forced.beam_bookkeeping == BeamBookkeeping::Host)) {
    return forced.beam_bookkeeping;
  }
  // On the device whenever it fits: the host path copies every row's logits back and waits for
  // each step; it is there for more than kMaxBeams beams.
  return device_fits ? BeamBookkeeping::Device : BeamBookkeeping::Host;
}

bool use_tensor_core_small_linear(DType dtype, const ChoiceContext& context) {
  return is_16_bit(dtype) && tensor_cores(context);
}

bool use_dependent_launch(const ChoiceContext& context) {
  return !context.forced.portable && context.capability >= kDependentLaunchArch;
}

const char* kernel_name(EncoderAttentionKernel kernel) {
  switch (kernel) {
    case EncoderAttentionKernel::FusedTensorCore:
      return "fused";
    case EncoderAttentionKernel::Cudnn:
      return "cudnn";
    case EncoderAttentionKernel::Gemms:
      break;
  }
  return "gemms";
}

const char* kernel_name(CrossAttentionKernel kernel) {
  switch (kernel) {
    case CrossAttentionKernel::GroupedTensorCore: return "grouped";
    case CrossAttentionKernel::Chunked: return "chunked";
    case CrossAttentionKernel::OverEncoderStates: return "encoder_states";
  }
  return "?";
}

}  // namespace trocr::cuda

#pragma once
// Which implementation each CUDA op runs. The ops choose for themselves from the dtype, the
// shapes and the GPU's compute capability; the rules and the measurements behind them are here,
// in one place. The public API has no kernel switches: tests and `trocr bench` force a path
// through TROCR_KERNELS (or set_kernel_overrides), e.g. TROCR_KERNELS=portable runs every op's
// portable path on any GPU, as a Turing card (sm_75) does.
#include <string>

#include "common/dtype.h"

namespace trocr::cuda {

// The lowest compute capability (major * 10 + minor) of the fast kernels: the tensor-core
// kernels use cp.async, ldmatrix and the m16n8k16 mma (sm_80); programmatic dependent launch
// (a decode step's kernels overlapping their predecessors) is Hopper's (sm_90).
constexpr int kTensorCoreArch = 80;
constexpr int kDependentLaunchArch = 90;

// The current device's compute capability, queried once per device.
int compute_capability();
// The current device's SM count: the kernels that size their grids to fill the GPU ask it.
int multiprocessor_count();

enum class EncoderAttentionKernel {
  FusedTensorCore,  // ours (kernels.h's encoder_attention): 16-bit, heads of 64
  Cudnn,            // cuDNN's fused attention (cudnn_attention.h), where the library loads
  Gemms,            // two batched GEMMs around a softmax pass; any dtype and width
};
enum class CrossAttentionKernel {
  GroupedTensorCore,  // an image's rows (its beams) read its keys and values together
  Chunked,            // a block per row, head and 32 keys (flash-decoding); any dtype and width
  OverEncoderStates,  // greedy only: W_k folded into the query, W_v after the sum; no per-layer K/V
};
enum class BeamBookkeeping { Device, Host };

struct KernelOverrides {
  bool portable = false;  // every op's portable path, and no dependent launch
  bool force_encoder_attention = false;
  EncoderAttentionKernel encoder_attention = EncoderAttentionKernel::Gemms;
  bool force_cross_attention = false;
  CrossAttentionKernel cross_attention = CrossAttentionKernel::Chunked;
  bool force_beam_bookkeeping = false;
  BeamBookkeeping beam_bookkeeping = BeamBookkeeping::Host;
};

// From TROCR_KERNELS when first asked; a comma-separated list of `portable`,
// `encoder_attention=fused|cudnn|gemms`, `cross_attention=grouped|chunked|encoder_states` and
// `beam_bookkeeping=device|host`. Set before an engine is made: a made engine's captured
// graphs keep the choices they were captured with.
const KernelOverrides& kernel_overrides();
void set_kernel_overrides(const std::string& spec);  // "" restores the defaults

KernelOverrides parse_kernel_overrides(const std::string& spec);

// What a choice depends on besides the op's own shapes: the GPU and the forced paths.
struct ChoiceContext {
  int capability;  // compute capability, major * 10 + minor
  KernelOverrides forced;
  bool cudnn_attention = false;  // cuDNN's fused attention loads here (CudnnAttention::available)
};
ChoiceContext current_choice_context();  // the current device's, under kernel_overrides()

// The ops' choices. head_dim and widths are the model's; the fast kernels take 16-bit dtypes.
// Each rule is a pure function of its arguments (tests/cuda/kernel_choice_test.cc); the
// overloads without a context use the current device's.
EncoderAttentionKernel choose_encoder_attention(DType dtype, int head_dim, const ChoiceContext& context);
// rows: the step's row count; greedy: one row per image (the over-encoder-states form needs it).
// d_model and cross_width: the decoder's width and the encoder states' width. key_values_computed:
// the rows' per-layer K/V exist (lines in flight admit images without them where their steps may
// attend over the states, and compute them only where this rule then wants them).
CrossAttentionKernel choose_cross_attention(DType dtype, int head_dim, int rows, bool greedy, int d_model,
                                            int cross_width, bool key_values_computed, const ChoiceContext& context);
BeamBookkeeping choose_beam_bookkeeping(int num_beams, int vocab_size, const ChoiceContext& context);
// small_linear's tensor-core kernel (16-bit dtypes) rather than its CUDA-core one.
bool use_tensor_core_small_linear(DType dtype, const ChoiceContext& context);
bool use_dependent_launch(const ChoiceContext& context);

inline EncoderAttentionKernel choose_encoder_attention(DType dtype, int head_dim) {
  return choose_encoder_attention(dtype, head_dim, current_choice_context());
}
inline CrossAttentionKernel choose_cross_attention(DType dtype, int head_dim, int rows, bool greedy, int d_model,
                                                   int cross_width, bool key_values_computed) {
  return choose_cross_attention(dtype, head_dim, rows, greedy, d_model, cross_width, key_values_computed,
                                current_choice_context());
}
inline BeamBookkeeping choose_beam_bookkeeping(int num_beams, int vocab_size) {
  return choose_beam_bookkeeping(num_beams, vocab_size, current_choice_context());
}
inline bool use_tensor_core_small_linear(DType dtype) {
  return use_tensor_core_small_linear(dtype, current_choice_context());
}
inline bool use_dependent_launch() { return use_dependent_launch(current_choice_context()); }

const char* kernel_name(EncoderAttentionKernel kernel);
const char* kernel_name(CrossAttentionKernel kernel);

}  // namespace trocr::cuda

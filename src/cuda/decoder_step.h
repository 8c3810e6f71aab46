#pragma once
// One decode step of the TrOCR decoder on the GPU, for up to a planned number of rows: the
// embedding, each layer's self-attention over the KV caches, cross-attention over the encoder
// states, the FFN, and the fp32 logits. It owns the step's inputs (tokens, the rows' cache slots
// and images, the position, all on the device so that a captured step replays as is) and its
// buffers, allocated once. Which kernels run is chosen inside (kernel_choice.h); the callers,
// the searches, only say how many rows and which cross-attention form the step uses.
#include <vector>

#include "cuda/encoder_states.h"
#include "cuda/gemm.h"
#include "cuda/kernel_choice.h"
#include "cuda/kernels/kernels.h"
#include "cuda/kv_caches.h"
#include "trocr/config.h"

namespace trocr::cuda {

// Whether a step's rows share one position (a whole batch in step: beam search, the host-driven
// decoder) or each row stands at its image's own (greedy search, whose lines may join a running
// batch at any step).
enum class RowPositions { Shared, PerImage };

// What a step's launches depend on besides the step's fixed buffers: part of every step spec
// (step_graphs.h).
struct StepShape {
  int rows;
  int groups;    // runs of consecutive rows with the same image (the grouped cross-attention's)
  int max_keys;  // the most positions any row's self-attention reads in this search
  CrossAttentionKernel cross_attention;
  RowPositions positions;
};

template <typename T>
class DecoderStep {
 public:
  DecoderStep(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm, EncoderStates<T>& states,
              KvCaches<T>& caches, int max_rows);

  // The cross-attention a search of `rows` rows uses (greedy: one row per image; without
  // key_values_computed, the rows' images have no per-layer K/V yet: a choice other than the
  // over-encoder-states form then needs them computed first).
  CrossAttentionKernel choose_cross_attention(int rows, bool greedy, bool key_values_computed = true) const;
  // Row r reads cache slot slots[r] and image images[r] (uploaded on the stream). Returns the
  // shape for the next steps, which read `max_keys` positions at most.
  StepShape set_rows(const std::vector<int>& slots, const std::vector<int>& images, int max_keys,
                     CrossAttentionKernel cross_attention, RowPositions positions = RowPositions::Shared);
  // The rows' input tokens and positions (tokens before them), read on the device: the shared
  // position is position()[0]; per image, image i's is position()[i].
  int* tokens() { return tokens_.data(); }
  int* position() { return position_.data(); }
  StepPositions positions(const StepShape& shape) {
    return {position_.data(), shape.positions == RowPositions::PerImage ? row_images_.data() : nullptr};
  }
  const int* row_slots() const { return row_slots_.data(); }
  const int* row_images() const { return row_images_.data(); }
  // Runs the decoder for the rows of `shape`: logits() then holds [rows, vocab] fp32, and each
  // row's key and value are in its cache slot at *position.
  void forward(const StepShape& shape);
  const float* logits() const { return logits_.data(); }
  int max_rows() const { return max_rows_; }
  cudaStream_t stream() const { return gemm_.stream(); }

 private:
  void cross_attention(int layer, const StepShape& shape);
  void attention_over_encoder_states(int layer, int rows);

  const DeviceWeights<T>& weights_;
  const ModelConfig& config_;
  Gemm& gemm_;
  EncoderStates<T>& states_;
  KvCaches<T>& caches_;
  int max_rows_;
  DeviceBuffer<int> tokens_, row_slots_, row_images_, group_starts_, position_;
  DeviceBuffer<T> hidden_, hidden_alternate_, qkv_, context_, projected_, query_, ffn_;
  DeviceBuffer<float> logits_, attention_scratch_;
  // The over-encoder-states cross-attention's (allocated when it can be chosen).
  DeviceBuffer<T> folded_queries_, folded_mix_;
  DeviceBuffer<float> folded_partials_;
};

}  // namespace trocr::cuda

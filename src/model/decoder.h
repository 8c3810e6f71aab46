#pragma once
// The TrOCR text decoder on the CPU, as a StepModel: token embedding times embed_scale plus
// positions, optional layernorm_embedding, post-LN blocks of self-attention (over a per-slot
// KV cache), cross-attention (over K/V computed once per image) and the FFN, then the output
// projection. A decoder made once and reused keeps its workspaces (and their pages) between
// generate calls.
#include <memory>
#include <vector>

#include "common/scratch.h"
#include "decoding/step_model.h"
#include "model/weights.h"

namespace trocr {

class CpuDecoder : public StepModel {
 public:
  CpuDecoder(const ModelWeights& weights, const ModelConfig& config);

  // encoder_hidden: [images, sequence, encoder hidden], the encoder's last_hidden_state.
  // Applies enc_to_dec_proj when the model has one and computes every layer's cross K/V.
  void set_encoder_output(const float* encoder_hidden, int images, int sequence);
  // In-flight batching: room for `images` images' cross K/V, then images loaded into any of
  // those slots (encoder_hidden: [image_slots.size(), sequence, encoder hidden]) while lines of
  // other slots are mid-sequence.
  void reserve_images(int images, int sequence);
  void load_images(const float* encoder_hidden, const std::vector<int>& image_slots);

  int vocab_size() const override { return config_.decoder.vocab_size; }
  int max_length() const override;
  void begin(const std::vector<int>& slot_sources) override;
  void step(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
            float* logits) override;
  // A step whose rows stand at their own positions (an in-flight batch): row i feeds tokens[i]
  // to slot slots[i] at positions[i].
  void step_rows(const std::vector<int>& slots, const std::vector<int>& tokens, const std::vector<int>& positions,
                 float* logits);
  void reorder(const std::vector<int>& slots, const std::vector<int>& sources,
               int position) override;

 private:
  void embed(const std::vector<int>& tokens, const std::vector<int>& positions, float* hidden) const;
  float* cache_row(const Scratch& cache, int layer, int slot, int position) const;

  const ModelWeights& weights_;
  const ModelConfig& config_;
  int images_ = 0;
  int encoder_sequence_ = 0;
  Scratch projected_;                  // the encoder's states through enc_to_dec_proj
  Scratch cross_keys_, cross_values_;  // [layer][image][sequence][d_model]
  std::vector<int> slot_sources_;
  Scratch self_keys_, self_values_;  // [layer][slot][max_length][d_model]
  std::vector<float> hidden_, q_, k_, v_, context_, ffn_;  // a step's workspaces, [rows][width]
};

}  // namespace trocr

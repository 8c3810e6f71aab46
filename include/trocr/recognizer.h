#pragma once
// The library's front door: open a HF TrOCR checkpoint directory, turn images into text.
//
//   trocr::Recognizer recognizer("models/demo");
//   auto lines = recognizer.recognize({trocr::read_image_file("line.png")});
//   std::cout << lines[0].best().text << "\n";
#include <memory>
#include <string>
#include <vector>

#include "trocr/config.h"
#include "trocr/image.h"

namespace trocr {

struct EngineOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  std::string dtype = "fp32";  // "fp32" or "bf16"; on CUDA also "fp16"
  int threads = 0;             // CPU engine threads, shared by every loop; 0: one per physical core
  int batch_size = 8;          // images encoded and decoded together
  bool profile = false;        // time the phases of each call (CUDA events); see profile_report
  // Kernel choices of the CUDA engine, both on by default because they measured faster on an
  // H100 (docs/CUDA_ENGINE.md); off is the path fp32 always takes. fp16/bf16 with 64-wide heads:
  // the encoder's attention as one flash-style tensor-core kernel, instead of two batched GEMMs
  // around a materialized softmax.
  bool fused_encoder_attention = true;
  // fp16/bf16 with 32- or 64-wide heads: the decoder's cross-attention on tensor cores, the rows
  // of one image (its beams) reading its keys and values together, instead of a block per row,
  // head and 32 keys (flash-decoding).
  bool grouped_cross_attention = true;
  // Greedy decoding only: cross-attention reads the encoder output itself (the query projected
  // through W_k per head, the value projection applied after the weighted sum) instead of
  // per-layer K/V computed once per image: less memory traffic at large batches (one fused pass
  // in fp16/bf16), more kernels per step. Off by default: faster only for large batches of
  // trocr-base-sized models (docs/CUDA_ENGINE.md).
  bool folded_cross_attention = false;
  // Beam search's bookkeeping (candidates, finished set, stopping rule) on the GPU inside each
  // step's graph, for up to 16 beams; off: the host does it between steps, as the CPU engine does.
  bool device_beam_search = true;
};

struct TextCandidate {
  std::string text;
  std::vector<int> ids;  // start token first, as HF's generate() returns them (without padding)
  // Beam search: HF's sequences_scores. Greedy: the mean log-probability of the chosen tokens.
  float score = 0.0f;
  float mean_token_probability = 0.0f;
  float min_token_probability = 0.0f;
};

struct Recognition {
  std::vector<TextCandidate> candidates;  // best first; num_return_sequences of them
  const TextCandidate& best() const { return candidates.front(); }
};

class Recognizer {
 public:
  explicit Recognizer(const std::string& model_dir, const EngineOptions& options = {});
  ~Recognizer();
  Recognizer(const Recognizer&) = delete;
  Recognizer& operator=(const Recognizer&) = delete;

  // The checkpoint's own settings: what model.generate(pixel_values) would use.
  const GenerationConfig& default_generation() const;
  const PreprocessConfig& preprocess_config() const;
  const ModelConfig& model_config() const;

  std::vector<Recognition> recognize(const std::vector<RgbImage>& images) const;
  std::vector<Recognition> recognize(const std::vector<RgbImage>& images,
                                     const GenerationConfig& generation) const;
  // From preprocessed pixels: [count, 3, height, width].
  std::vector<Recognition> recognize_pixels(const std::vector<float>& pixels, int count,
                                            const GenerationConfig& generation) const;
  // The encoder's last_hidden_state for preprocessed pixels: [count, sequence, hidden].
  std::vector<float> encode(const std::vector<float>& pixels, int count) const;
  // With EngineOptions::profile: where the last recognize call spent its time.
  std::string profile_report() const;
  // Decoder logits for one image and teacher-forced ids: [ids.size() - 1, vocab].
  std::vector<float> decoder_logits(const std::vector<float>& pixels, const std::vector<int>& ids) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trocr

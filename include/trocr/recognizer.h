#pragma once
// The library's front door: open a HF TrOCR checkpoint directory, turn images into text.
//
//   trocr::Recognizer recognizer("models/demo");
//   auto lines = recognizer.recognize({trocr::read_image_file("line.png")});
//   std::cout << lines[0].best().text << "\n";
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trocr/config.h"
#include "trocr/image.h"

namespace trocr {

struct EngineOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  std::string dtype = "fp32";  // "fp32" or "bf16"; on CUDA also "fp16" and "fp8" (E4M3 encoder products)
  int threads = 0;             // CPU engine threads, shared by every loop; 0: one per physical core
  int batch_size = 8;          // images encoded and decoded together
  bool profile = false;        // time the phases of each call (CUDA events); see profile_report
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

// In-flight batching: images join a running batch between decoding steps and leave as soon as
// their line ends, so that none waits for another's. Greedy search (CPU and CUDA engines).
// From one thread at a time, except that prepare may run beside step.
class RecognitionStream {
 public:
  virtual ~RecognitionStream() = default;
  virtual int capacity() const = 0;  // lines at once
  virtual int active() const = 0;
  // Resizes and normalizes images (no more than the free lines) for the next admit_prepared. It
  // may run on another thread while step runs, so that the host's work overlaps a GPU's step;
  // never beside another prepare or an admit.
  virtual void prepare(const std::vector<RgbImage>& images) = 0;
  // A line for each image of the last prepare; returns their line numbers, each held until its
  // line ends.
  virtual std::vector<int> admit_prepared() = 0;
  std::vector<int> admit(const std::vector<RgbImage>& images) {
    prepare(images);
    return admit_prepared();
  }
  // One decoding step for every line; the lines that ended in it.
  virtual std::vector<std::pair<int, Recognition>> step() = 0;
  // With EngineOptions::profile: where the lines' time went since the last report.
  virtual std::string profile_report() { return ""; }
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

  // How many images to pass per recognize() call when streaming many: several batches, so that
  // the next batch is resized while the model reads this one, and enough images that per-call
  // costs vanish at batch 1 (the CLI and the Python package read files in pieces of this size).
  size_t images_per_call() const;

  std::vector<Recognition> recognize(const std::vector<RgbImage>& images) const;
  std::vector<Recognition> recognize(const std::vector<RgbImage>& images,
                                     const GenerationConfig& generation) const;
  // From preprocessed pixels: [count, 3, height, width].
  std::vector<Recognition> recognize_pixels(const std::vector<float>& pixels, int count,
                                            const GenerationConfig& generation) const;
  // The encoder's last_hidden_state for preprocessed pixels: [count, sequence, hidden].
  std::vector<float> encode(const std::vector<float>& pixels, int count) const;
  // Lines recognized in flight, `capacity` at once, with these settings; nullptr where the
  // engine needs whole batches for them (the CPU engine's beam search, the CUDA engine's beyond
  // 16 beams, several returned sequences).
  std::unique_ptr<RecognitionStream> open_stream(const GenerationConfig& generation, int capacity) const;
  // With EngineOptions::profile: where the last recognize call spent its time.
  std::string profile_report() const;
  // Decoder logits for one image and teacher-forced ids: [ids.size() - 1, vocab].
  std::vector<float> decoder_logits(const std::vector<float>& pixels, const std::vector<int>& ids) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trocr

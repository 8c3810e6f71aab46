// Recognizer: preprocessing, the encoder, decoding and detokenization, batch by batch.
#include "trocr/recognizer.h"

#include <cblas.h>

#include "common/check.h"
#include "decoding/search.h"
#include "model/decoder.h"
#include "model/encoder.h"
#include "model/model_directory.h"

namespace trocr {

struct Recognizer::Impl {
  ModelDirectory model;
  EngineOptions options;
};

Recognizer::Recognizer(const std::string& model_dir, const EngineOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (options.device != "cpu") {
    fail("device '{}': this build's engine runs on the CPU only (the CUDA engine is not part of "
         "it yet); use --device cpu",
         options.device);
  }
  if (options.batch_size < 1) fail("batch size must be at least 1, got {}", options.batch_size);
  if (options.threads < 0) fail("threads must not be negative, got {}", options.threads);
  if (options.threads > 0) openblas_set_num_threads(options.threads);
  impl_->options = options;
  impl_->model = load_model_directory(model_dir);
}

Recognizer::~Recognizer() = default;

const GenerationConfig& Recognizer::default_generation() const { return impl_->model.generation; }
const PreprocessConfig& Recognizer::preprocess_config() const { return impl_->model.preprocess; }
const ModelConfig& Recognizer::model_config() const { return impl_->model.config; }

std::vector<float> Recognizer::encode(const std::vector<float>& pixels, int count) const {
  const EncoderConfig& encoder = impl_->model.config.encoder;
  const size_t image_size = size_t{3} * encoder.image_height * encoder.image_width;
  if (pixels.size() != image_size * count) {
    fail("encode: {} pixel values for {} images of 3x{}x{}", pixels.size(), count,
         encoder.image_height, encoder.image_width);
  }
  return encode_images(impl_->model.weights.encoder, encoder, pixels.data(), count);
}

std::vector<Recognition> Recognizer::recognize_pixels(const std::vector<float>& pixels, int count,
                                                      const GenerationConfig& generation) const {
  const ModelConfig& config = impl_->model.config;
  const EncoderConfig& encoder = config.encoder;
  const size_t image_size = size_t{3} * encoder.image_height * encoder.image_width;
  const SearchOptions options = SearchOptions::from(generation);
  std::vector<Recognition> results;
  for (int first = 0; first < count; first += impl_->options.batch_size) {
    const int batch = std::min(impl_->options.batch_size, count - first);
    const std::vector<float> slice(pixels.begin() + first * image_size,
                                   pixels.begin() + (first + batch) * image_size);
    const std::vector<float> hidden = encode(slice, batch);
    CpuDecoder decoder(impl_->model.weights, config);
    decoder.set_encoder_output(hidden.data(), batch, encoder.sequence_length());
    for (auto& hypotheses : generate(decoder, batch, options)) {
      Recognition recognition;
      for (auto& hypothesis : hypotheses) {
        TextCandidate candidate;
        candidate.text = impl_->model.detokenizer->decode(hypothesis.ids);
        candidate.ids = std::move(hypothesis.ids);
        candidate.score = hypothesis.score;
        candidate.mean_token_probability = hypothesis.mean_token_probability;
        candidate.min_token_probability = hypothesis.min_token_probability;
        recognition.candidates.push_back(std::move(candidate));
      }
      results.push_back(std::move(recognition));
    }
  }
  return results;
}

std::vector<Recognition> Recognizer::recognize(const std::vector<RgbImage>& images,
                                               const GenerationConfig& generation) const {
  std::vector<float> pixels;
  for (const RgbImage& image : images) {
    const std::vector<float> one = preprocess_image(image, impl_->model.preprocess);
    pixels.insert(pixels.end(), one.begin(), one.end());
  }
  return recognize_pixels(pixels, static_cast<int>(images.size()), generation);
}

std::vector<Recognition> Recognizer::recognize(const std::vector<RgbImage>& images) const {
  return recognize(images, default_generation());
}

}  // namespace trocr

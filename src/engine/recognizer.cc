// Recognizer: preprocessing, then the backend (CPU or CUDA) for the model, then the
// detokenizer, batch by batch.
#include "trocr/recognizer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fmt/format.h>
#include <future>
#include <iterator>

#include "common/check.h"
#include "common/parallel.h"
#include "common/pool.h"
#include "common/scratch.h"
#include "engine/backend.h"
#include "model/model_directory.h"

namespace trocr {

struct Recognizer::Impl {
  ModelDirectory model;
  EngineOptions options;
  std::unique_ptr<Backend> backend;
  // The last call's preprocessing until its first batch could start (negative: it was given pixels).
  std::atomic<double> preprocess_ms{-1};
  // Two batches' pixels per concurrent recognize call (one read by the model, the next being
  // prepared), kept between calls: fresh ones cost a page fault per 4 KB, which on the GPU host
  // made a served batch of 110 images wait 130 ms before the GPU started.
  // The backend's memory (page-locked for CUDA: uploads at DMA speed, not staged by the driver).
  struct PixelBuffers {
    explicit PixelBuffers(const HostAllocator& allocator) : batch{Scratch(allocator), Scratch(allocator)} {}
    Scratch batch[2];
  };
  Pool<PixelBuffers> pixel_buffers{[this] { return std::make_unique<PixelBuffers>(backend->pixel_allocator()); }};

  std::vector<Recognition> recognize_pixels(const float* pixels, int count, const GenerationConfig& generation);
  Recognition to_recognition(std::vector<Hypothesis> hypotheses) const;
  // Resizes (where the model's preprocessor does) and normalizes images into `pixels`; errors
  // name an image by its index in the caller's list, `first` + i.
  void preprocess(const RgbImage* images, size_t count, size_t first, float* pixels) const;
  class Stream;  // a RecognitionStream over the backend's LineBatch

  size_t image_values() const {
    const EncoderConfig& encoder = model.config.encoder;
    return size_t{3} * encoder.image_height * encoder.image_width;
  }
};

Recognizer::Recognizer(const std::string& model_dir, const EngineOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (options.batch_size < 1) fail("batch size must be at least 1, got {}", options.batch_size);
  if (options.threads < 0) fail("threads must not be negative, got {}", options.threads);
  impl_->options = options;
  impl_->model = load_model_directory(model_dir);
  BackendOptions backend;
  backend.threads = options.threads;
  backend.max_batch = options.batch_size;
  backend.profile = options.profile;
  impl_->backend = make_backend(impl_->model, options.device, options.dtype, backend);
}

Recognizer::~Recognizer() = default;

const GenerationConfig& Recognizer::default_generation() const { return impl_->model.generation; }
const PreprocessConfig& Recognizer::preprocess_config() const { return impl_->model.preprocess; }
const ModelConfig& Recognizer::model_config() const { return impl_->model.config; }

size_t Recognizer::images_per_call() const {
  constexpr size_t kBatchesPerCall = 4, kMinimumImagesPerCall = 64;
  return std::max(kBatchesPerCall * static_cast<size_t>(impl_->options.batch_size), kMinimumImagesPerCall);
}

std::vector<float> Recognizer::encode(const std::vector<float>& pixels, int count) const {
  if (pixels.size() != impl_->image_values() * count) {
    fail("encode: {} pixel values for {} images of {} values", pixels.size(), count,
         impl_->image_values());
  }
  return impl_->backend->encode(pixels.data(), count);
}

std::string Recognizer::profile_report() const {
  const std::string backend = impl_->backend->profile_report();
  const double preprocess_ms = impl_->preprocess_ms;
  if (backend.empty() || preprocess_ms < 0) return backend;
  return fmt::format("preprocessing before the first batch {:.3f} ms, {}", preprocess_ms, backend);
}

std::vector<float> Recognizer::decoder_logits(const std::vector<float>& pixels,
                                              const std::vector<int>& ids) const {
  if (pixels.size() != impl_->image_values()) fail("decoder_logits: expected one image's pixels");
  return impl_->backend->decoder_logits(pixels.data(), ids);
}

std::vector<Recognition> Recognizer::recognize_pixels(const std::vector<float>& pixels, int count,
                                                      const GenerationConfig& generation) const {
  if (pixels.size() != impl_->image_values() * count) {
    fail("recognize: {} pixel values for {} images of {} values", pixels.size(), count,
         impl_->image_values());
  }
  impl_->preprocess_ms = -1;
  return impl_->recognize_pixels(pixels.data(), count, generation);
}

std::vector<Recognition> Recognizer::Impl::recognize_pixels(const float* pixels, int count,
                                                            const GenerationConfig& generation) {
  const SearchOptions search = SearchOptions::from(generation);
  validate(search, model.config.decoder.max_position_embeddings);
  std::vector<Recognition> results;
  for (int first = 0; first < count; first += options.batch_size) {
    const int batch = std::min(options.batch_size, count - first);
    for (auto& hypotheses : backend->generate(pixels + first * image_values(), batch, search)) {
      results.push_back(to_recognition(std::move(hypotheses)));
    }
  }
  return results;
}

std::vector<Recognition> Recognizer::recognize(const std::vector<RgbImage>& images,
                                               const GenerationConfig& generation) const {
  // Resizing and normalization are independent per image: all cores share them, and the next
  // batch's run on other threads while the model reads this one (on CUDA the host mostly waits).
  const size_t values = impl_->image_values();
  const size_t batch = static_cast<size_t>(impl_->options.batch_size);
  Pool<Impl::PixelBuffers>::Lease buffers(impl_->pixel_buffers);
  const auto preprocess = [&](size_t first, Scratch& into) {
    const size_t count = std::min(batch, images.size() - first);
    float* pixels = into.floats(count * values);
    impl_->preprocess(images.data() + first, count, first, pixels);
    return pixels;
  };
  std::vector<Recognition> results;
  if (images.empty()) return results;
  const auto started = std::chrono::steady_clock::now();
  const float* pixels = preprocess(0, buffers->batch[0]);
  impl_->preprocess_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  for (size_t first = 0, index = 0;; first += batch, ++index) {
    std::future<float*> next;
    if (first + batch < images.size()) {
      next = std::async(std::launch::async, preprocess, first + batch, std::ref(buffers->batch[(index + 1) % 2]));
    }
    const int count = static_cast<int>(std::min(batch, images.size() - first));
    auto recognized = impl_->recognize_pixels(pixels, count, generation);
    std::move(recognized.begin(), recognized.end(), std::back_inserter(results));
    if (!next.valid()) return results;
    pixels = next.get();
  }
}

Recognition Recognizer::Impl::to_recognition(std::vector<Hypothesis> hypotheses) const {
  Recognition recognition;
  for (auto& hypothesis : hypotheses) {
    TextCandidate candidate;
    candidate.text = model.detokenizer->decode(hypothesis.ids);
    candidate.ids = std::move(hypothesis.ids);
    candidate.score = hypothesis.score;
    candidate.mean_token_probability = hypothesis.mean_token_probability;
    candidate.min_token_probability = hypothesis.min_token_probability;
    recognition.candidates.push_back(std::move(candidate));
  }
  return recognition;
}

void Recognizer::Impl::preprocess(const RgbImage* images, size_t count, size_t first, float* pixels) const {
  const PreprocessConfig& config = model.preprocess;
  const size_t values = image_values();
  parallel_for(count, [&](size_t i) {
    const RgbImage& image = images[i];
    if (!config.do_resize && size_t(3) * image.width * image.height != values) {
      fail("recognize: image {} is {}x{}; the model takes {}x{} and its preprocessor does not resize", first + i,
           image.width, image.height, config.width, config.height);
    }
    preprocess_image(image, config, pixels + i * values);
  });
}

class Recognizer::Impl::Stream : public RecognitionStream {
 public:
  Stream(const Impl& impl, std::unique_ptr<LineBatch> lines)
      : impl_(impl), lines_(std::move(lines)),
        buffers_{Scratch(impl.backend->pixel_allocator()), Scratch(impl.backend->pixel_allocator())} {}
  int capacity() const override { return lines_->capacity(); }
  int active() const override { return lines_->active(); }

  // Two buffers: an admission's upload may still read one until the next step has run, while
  // prepare fills the other. Free lines are counted at admission: a step running beside prepare
  // frees lines, and prepare reads nothing that step writes.
  void prepare(const std::vector<RgbImage>& images) override {
    const auto started = std::chrono::steady_clock::now();
    float* pixels = buffers_[next_].floats(images.size() * impl_.image_values());
    impl_.preprocess(images.data(), images.size(), 0, pixels);
    prepared_ = static_cast<int>(images.size());
    preprocess_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  }

  // (The line batch refuses more images than free lines.)
  std::vector<int> admit_prepared() override {
    const int count = prepared_;
    prepared_ = 0;
    if (count == 0) return {};
    if (admitted_at_step_[next_] == steps_) {
      fail("recognition stream: two admissions without a step between them overwrote pixels still being read");
    }
    std::vector<int> lines = lines_->admit(buffers_[next_].data(), count);
    admitted_at_step_[next_] = steps_;
    next_ = 1 - next_;
    return lines;
  }

  std::vector<std::pair<int, Recognition>> step() override {
    std::vector<std::pair<int, Recognition>> ended;
    for (LineBatch::Ended& line : lines_->step()) {
      std::vector<Hypothesis> hypotheses;
      hypotheses.push_back(std::move(line.hypothesis));
      ended.emplace_back(line.line, impl_.to_recognition(std::move(hypotheses)));
    }
    ++steps_;
    return ended;
  }

  std::string profile_report() override {
    const std::string lines = lines_->profile_report();
    if (lines.empty()) return "";
    const std::string report = fmt::format("host preprocessing {:.3f} ms; {}", preprocess_ms_, lines);
    preprocess_ms_ = 0.0;
    return report;
  }

 private:
  const Impl& impl_;
  std::unique_ptr<LineBatch> lines_;
  Scratch buffers_[2];
  int64_t steps_ = 0, admitted_at_step_[2] = {-1, -1};  // when each buffer was last admitted
  int next_ = 0, prepared_ = 0;
  double preprocess_ms_ = 0.0;
};

std::unique_ptr<RecognitionStream> Recognizer::open_stream(const GenerationConfig& generation, int capacity) const {
  const SearchOptions search = SearchOptions::from(generation);
  validate(search, impl_->model.config.decoder.max_position_embeddings);
  std::unique_ptr<LineBatch> lines = impl_->backend->open_line_batch(search, capacity);
  if (!lines) return nullptr;
  return std::make_unique<Impl::Stream>(*impl_, std::move(lines));
}

std::vector<Recognition> Recognizer::recognize(const std::vector<RgbImage>& images) const {
  return recognize(images, default_generation());
}

}  // namespace trocr

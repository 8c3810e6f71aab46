// The CUDA backend: weights uploaded once in the chosen dtype; greedy decoding runs on the
// device as replayed CUDA graphs, and so does beam search (up to 16 beams; more, or
// device_beam_search off, and the host drives the same decoder step).
#include <fmt/format.h>

#include <cstring>

#include "common/dtype.h"
#include "cuda/cuda_model.h"
#include "cuda/device_info.h"
#include "cuda/dtype_traits.h"
#include "engine/backend.h"

namespace trocr {
namespace {

template <typename T>
std::vector<float> to_host_floats(const cuda::DeviceBuffer<T>& buffer, size_t count, cudaStream_t stream) {
  std::vector<T> values(count);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(values.data(), buffer.data(), count * sizeof(T), cudaMemcpyDeviceToHost, stream));
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<float> result(count);
  if constexpr (std::is_same_v<T, float>) {
    result = std::move(values);
  } else {
    convert_to_float32(std::is_same_v<T, __half> ? DType::F16 : DType::BF16, values.data(), count,
                       result.data());
  }
  return result;
}

template <typename T>
class CudaBackend : public Backend {
 public:
  CudaBackend(const ModelDirectory& model, int device, const BackendOptions& options)
      : model_(model), profile_(options.profile), device_beam_search_(options.device_beam_search) {
    const CudaDevices found = query_cuda_devices();
    if (found.devices.empty()) fail("device 'cuda:{}': {}", device, found.absent_because);
    if (device >= int(found.devices.size())) {
      fail("device 'cuda:{}': this machine has {} CUDA device(s)", device, found.devices.size());
    }
    TROCR_CUDA_CHECK(cudaSetDevice(device));
    if (model.config.encoder.sequence_length() > 4096 || model.config.decoder.max_position_embeddings > 4096) {
      fail("{}: the CUDA engine supports at most 4096 encoder tokens and decoder positions", model.path);
    }
    TROCR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    weights_ = std::make_unique<cuda::DeviceWeights<T>>(cuda::upload_weights<T>(model.weights, stream_));
    engine_ = std::make_unique<cuda::CudaModel<T>>(*weights_, model.config, stream_, options);
    for (auto& event : events_) TROCR_CUDA_CHECK(cudaEventCreate(&event));
    TROCR_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    for (auto* events : {uploaded_, encoded_}) {
      for (int i = 0; i < 2; ++i) TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&events[i], cudaEventDisableTiming));
    }
  }

  ~CudaBackend() override {
    for (auto& event : events_) cudaEventDestroy(event);
    for (auto* events : {uploaded_, encoded_}) {
      for (int i = 0; i < 2; ++i) cudaEventDestroy(events[i]);
    }
    if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
    engine_.reset();
    weights_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  std::vector<float> encode(const float* pixels, int count) override {
    encode_on_device(pixels, count);
    const size_t values = size_t(count) * model_.config.encoder.sequence_length() * model_.config.encoder.hidden_size;
    return to_host_floats(encoder_out_, values, stream_);
  }

  std::vector<std::vector<Hypothesis>> generate(const float* pixels, int count,
                                                const SearchOptions& options) override {
    mark(0);
    encode_on_device(pixels, count);
    mark(1);
    engine_->set_encoder_output(encoder_out_.data(), count, /*greedy_only=*/options.num_beams == 1);
    engine_->set_cache_length(options.max_length);
    mark(2);
    if (options.num_beams > 1) {
      auto results = device_beam_search_ && engine_->beam_search_fits(options)
                         ? engine_->beam_search(count, options, model_.config.tokens.pad)
                         : beam_search(*engine_, count, options);
      mark(3);
      record_profile();
      return results;
    }
    auto greedy = engine_->greedy(count, options.max_length, options.min_length,
                                  options.no_repeat_ngram_size, options.decoder_start, options.eos,
                                  model_.config.tokens.pad);
    mark(3);
    record_profile();
    std::vector<std::vector<Hypothesis>> results(count);
    for (int i = 0; i < count; ++i) {
      results[i].push_back(greedy_hypothesis(std::move(greedy.ids[i]), greedy.sum_log_probability[i],
                                             greedy.sum_probability[i], greedy.min_probability[i]));
    }
    return results;
  }

  std::vector<float> decoder_logits(const float* pixels, const std::vector<int>& ids) override {
    encode_on_device(pixels, 1);
    engine_->set_encoder_output(encoder_out_.data(), 1);
    engine_->set_cache_length(std::max<int>(1, static_cast<int>(ids.size())));
    return teacher_forced_logits(*engine_, ids);
  }

 std::string profile_report() const override { return report_; }

 private:
  void mark(int index) {
    if (profile_) TROCR_CUDA_CHECK(cudaEventRecord(events_[index], stream_));
  }

  void record_profile() {
    if (!profile_) return;
    TROCR_CUDA_CHECK(cudaEventSynchronize(events_[3]));
    float phases[3];
    for (int i = 0; i < 3; ++i) TROCR_CUDA_CHECK(cudaEventElapsedTime(&phases[i], events_[i], events_[i + 1]));
    report_ = fmt::format("pixels upload + encoder {:.3f} ms, cross-attention K/V {:.3f} ms, decoding {:.3f} ms",
                          phases[0], phases[1], phases[2]);
  }

  // Pixels go up in pieces of the encoder's chunk size on a copy stream, into two alternating
  // buffers, so that one piece uploads while the previous one is encoded (256 trocr-base images
  // are 453 MB of fp32 pixels; PCIe takes tens of milliseconds for that).
  void encode_on_device(const float* pixels, int count) {
    const EncoderConfig& e = model_.config.encoder;
    const size_t image_values = size_t(3) * e.image_height * e.image_width;
    const size_t image_outputs = size_t(e.sequence_length()) * e.hidden_size;
    const int piece = cuda::CudaModel<T>::kEncoderChunk;
    if (encoder_out_.size() < count * image_outputs) encoder_out_.resize(count * image_outputs);
    for (int first = 0, index = 0; first < count; first += piece, ++index) {
      const int images = std::min(piece, count - first);
      cuda::DeviceBuffer<float>& buffer = pixels_[index % 2];
      if (buffer.size() < images * image_values) {
        TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the buffer may still be read
        buffer.resize(piece * image_values);
      }
      // The buffer's previous piece must be encoded before it is overwritten.
      TROCR_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, encoded_[index % 2]));
      TROCR_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), pixels + first * image_values, images * image_values * sizeof(float),
                                       cudaMemcpyHostToDevice, copy_stream_));
      TROCR_CUDA_CHECK(cudaEventRecord(uploaded_[index % 2], copy_stream_));
      TROCR_CUDA_CHECK(cudaStreamWaitEvent(stream_, uploaded_[index % 2]));
      engine_->encode(buffer.data(), images, encoder_out_.data() + first * image_outputs);
      TROCR_CUDA_CHECK(cudaEventRecord(encoded_[index % 2], stream_));
    }
  }

  const ModelDirectory& model_;
  bool profile_ = false;
  bool device_beam_search_ = true;
  cudaEvent_t events_[4] = {};
  std::string report_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::DeviceWeights<T>> weights_;
  std::unique_ptr<cuda::CudaModel<T>> engine_;
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t uploaded_[2] = {}, encoded_[2] = {};
  cuda::DeviceBuffer<float> pixels_[2];
  cuda::DeviceBuffer<T> encoder_out_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const ModelDirectory& model, int device_index,
                                           const std::string& dtype, const BackendOptions& options) {
  if (dtype == "fp16") return std::make_unique<CudaBackend<__half>>(model, device_index, options);
  if (dtype == "bf16") return std::make_unique<CudaBackend<__nv_bfloat16>>(model, device_index, options);
  return std::make_unique<CudaBackend<float>>(model, device_index, options);
}

}  // namespace trocr

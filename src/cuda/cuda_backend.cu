// The CUDA backend: the weights uploaded once in the chosen dtype (the host's copy released),
// a workspace planned for the largest batch seen, and a search strategy per call: greedy and
// beam search run their loops on the device; more than kMaxBeams beams, and the host drives
// the same decoder step. Lines in flight (cuda/line_batch.h) get a workspace of their own.
#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "common/dtype.h"
#include "cuda/cuda_weights.h"
#include "cuda/device_info.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernel_choice.h"
#include "cuda/kernels/kernels.h"
#include "cuda/line_batch.h"
#include "cuda/stream.h"
#include "cuda/workspace.h"
#include "engine/backend.h"

namespace trocr {
namespace {

template <typename T>
std::vector<float> to_host_floats(const T* values, size_t count, cudaStream_t stream) {
  std::vector<T> copied(count);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(copied.data(), values, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
  if constexpr (std::is_same_v<T, float>) {
    return copied;
  } else {
    std::vector<float> result(count);
    convert_to_float32(cuda::DataType<T>::dtype, copied.data(), count, result.data());
    return result;
  }
}

template <typename T>
class CudaBackend : public Backend {
 public:
  // fp8_products: the encoder's linear products in E4M3 (the "fp8" dtype; T is __half).
  CudaBackend(ModelDirectory& model, int device, const BackendOptions& options, bool fp8_products = false)
      : config_(model.config), device_(device), profile_(options.profile) {
    const CudaDevices found = query_cuda_devices();
    if (found.devices.empty()) fail("device 'cuda:{}': {}", device, found.absent_because);
    if (device >= int(found.devices.size())) {
      fail("device 'cuda:{}': this machine has {} CUDA device(s)", device, found.devices.size());
    }
    TROCR_CUDA_CHECK(cudaSetDevice(device));
    if (std::is_same_v<T, __nv_bfloat16> && cuda::compute_capability() < 80) {
      fail("device 'cuda:{}' ({}, compute capability {}.{}): bf16 needs compute capability 8.0 or newer; use fp16 "
           "or fp32",
           device, found.devices[device].name, found.devices[device].compute_major, found.devices[device].compute_minor);
    }
    if (config_.encoder.sequence_length() > 4096 || config_.decoder.max_position_embeddings > 4096) {
      fail("{}: the CUDA engine supports at most 4096 encoder tokens and decoder positions", model.path);
    }
    stream_ = std::make_unique<cuda::Stream>(cuda::StreamPriority::High);
    copy_stream_ = std::make_unique<cuda::Stream>(cuda::StreamPriority::Low);
    weights_ = std::make_unique<cuda::DeviceWeights<T>>(cuda::upload_weights<T>(model.weights, stream_->get()));
    if (fp8_products) {
      if (cuda::compute_capability() < 90) {
        fail("device 'cuda:{}' ({}, compute capability {}.{}): fp8 needs compute capability 9.0 or newer; use fp16",
             device, found.devices[device].name, found.devices[device].compute_major,
             found.devices[device].compute_minor);
      }
      const EncoderConfig& e = config_.encoder;
      for (int width : {e.hidden_size, e.intermediate_size}) {
        if (width % 16 != 0 || width > cuda::kMaxQuantizedWidth) {
          fail("{}: fp8 needs encoder widths that are multiples of 16 up to {}; this encoder has {}", model.path,
               cuda::kMaxQuantizedWidth, width);
        }
      }
      cuda::quantize_encoder_products(*weights_, stream_->get());
    }
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_->get()));
    model.weights = ModelWeights{};  // read once, at upload: nobody needs the host's copy again
    gemm_ = std::make_unique<cuda::Gemm>(stream_->get());
    for (auto& event : events_) TROCR_CUDA_CHECK(cudaEventCreate(&event));
    for (auto* events : {uploaded_, encoded_}) {
      for (int i = 0; i < 2; ++i) TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&events[i], cudaEventDisableTiming));
    }
    const SearchOptions defaults = SearchOptions::from(model.generation);
    plan_for({std::max(1, options.max_batch), defaults.num_beams, defaults.max_length});
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    if (stream_) cudaStreamSynchronize(stream_->get());
    for (auto& event : events_) cudaEventDestroy(event);
    for (auto* events : {uploaded_, encoded_}) {
      for (int i = 0; i < 2; ++i) cudaEventDestroy(events[i]);
    }
    workspace_.reset();
    gemm_.reset();
    weights_.reset();
  }

  std::vector<float> encode(const float* pixels, int count) override {
    use_device();
    plan_for({count, 1, 2});
    encode_on_device(pixels, count);
    const size_t values = size_t(count) * config_.encoder.sequence_length() * config_.encoder.hidden_size;
    return to_host_floats(workspace_->states.output(), values, stream_->get());
  }

  Hypotheses generate(const float* pixels, int count, const SearchOptions& options) override {
    use_device();
    plan_for({count, options.num_beams, options.max_length});
    mark(0);
    encode_on_device(pixels, count);
    mark(1);
    SearchStrategy& strategy = choose_search(options);
    auto results = strategy.search(count, options);
    mark(2);
    record_profile(count, options);
    return results;
  }

  std::vector<float> decoder_logits(const float* pixels, const std::vector<int>& ids) override {
    use_device();
    plan_for({1, 1, std::max<int>(2, static_cast<int>(ids.size()))});
    encode_on_device(pixels, 1);
    return teacher_forced_logits(workspace_->host_driven, ids);
  }

  std::string profile_report() const override { return report_; }

  std::unique_ptr<LineBatch> open_line_batch(const SearchOptions& options, int capacity) override;

  // Page-locked and portable (any of the host's GPUs may read it): cudaMemcpyAsync from it is a
  // DMA at PCIe speed; from pageable memory the driver stages it through its own pinned buffer
  // (~0.1 ms per trocr-base image in `trocr serve --profile`, docs/CUDA_ENGINE.md).
  HostAllocator pixel_allocator() const override {
    const int device = device_;
    return {[device](size_t count) {
              TROCR_CUDA_CHECK(cudaSetDevice(device));
              void* memory = nullptr;
              TROCR_CUDA_CHECK(cudaHostAlloc(&memory, count * sizeof(float), cudaHostAllocPortable));
              return static_cast<float*>(memory);
            },
            [](float* memory) { cudaFreeHost(memory); }};
  }

 private:
  // The current device is a thread's: a server calls each GPU's backend from its own thread, but
  // nothing promises that a caller's thread made this backend.
  void use_device() const { TROCR_CUDA_CHECK(cudaSetDevice(device_)); }

  // A workspace that covers `needed` (and what the current one covered), made before a batch
  // starts: nothing is allocated while it runs.
  void plan_for(const cuda::DecodePlan& needed) {
    if (workspace_ && workspace_->plan.covers(needed)) return;
    const cuda::DecodePlan plan = workspace_ ? workspace_->plan.joined(needed) : needed;
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_->get()));
    workspace_.reset();  // its memory first: the new one may need it
    workspace_ = std::make_unique<cuda::Workspace<T>>(*weights_, config_, *gemm_, plan);
    grow_pixel_buffers(workspace_->encoder.chunk());
    synchronize_own_streams();
  }

  // Waits for this backend's work only: another engine on this GPU may be capturing a graph from
  // its own thread, and a device-wide sync would break that capture (and wait for its work).
  void synchronize_own_streams() {
    for (cudaStream_t stream : {stream_->get(), copy_stream_->get(), cudaStream_t{nullptr}}) {
      TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }

  // The upload buffers hold a chunk of the largest encoder that uses them (whole batches' or a
  // line batch's).
  void grow_pixel_buffers(int chunk) {
    for (auto& buffer : pixels_) buffer.grow(size_t(chunk) * image_values());
  }

  SearchStrategy& choose_search(const SearchOptions& options) {
    if (options.num_beams == 1) return workspace_->greedy;
    if (cuda::choose_beam_bookkeeping(options.num_beams, config_.decoder.vocab_size) == cuda::BeamBookkeeping::Device) {
      return workspace_->beams;
    }
    host_beams_ = std::make_unique<HostSearch>(workspace_->host_driven);
    return *host_beams_;
  }

  size_t image_values() const {
    return size_t(3) * config_.encoder.image_height * config_.encoder.image_width;
  }

  void mark(int index) {
    if (profile_) TROCR_CUDA_CHECK(cudaEventRecord(events_[index], stream_->get()));
  }

  // The phases' times, and the kernels the ops chose for this batch.
  void record_profile(int count, const SearchOptions& options) {
    if (!profile_) return;
    TROCR_CUDA_CHECK(cudaEventSynchronize(events_[2]));
    float phases[2];
    for (int i = 0; i < 2; ++i) TROCR_CUDA_CHECK(cudaEventElapsedTime(&phases[i], events_[i], events_[i + 1]));
    const bool greedy = options.num_beams == 1;
    const auto cross = workspace_->step.choose_cross_attention(count * options.num_beams, greedy);
    std::string bookkeeping;
    if (!greedy) {
      const bool device = cuda::choose_beam_bookkeeping(options.num_beams, config_.decoder.vocab_size) ==
                          cuda::BeamBookkeeping::Device;
      bookkeeping = device ? ", beam bookkeeping on the device" : ", beam bookkeeping on the host";
    }
    report_ = fmt::format(
        "pixels upload + encoder {:.3f} ms, decoding (cross-attention K/V included) {:.3f} ms; kernels: encoder "
        "attention {}{}, cross-attention {}{}; step graphs captured so far: {}",
        phases[0], phases[1], cuda::kernel_name(workspace_->encoder.attention_kernel()),
        weights_->encoder_products_fp8.empty() ? "" : ", encoder products E4M3", cuda::kernel_name(cross),
        bookkeeping, workspace_->graphs.captures());
  }

  // Pixels go up in pieces of the encoder's chunk on a copy stream, into two alternating
  // buffers, so that one piece uploads while the previous one is encoded (256 trocr-base images
  // are 453 MB of fp32 pixels; PCIe takes tens of milliseconds for that). The encoder runs on its
  // workspace's encoding stream (a line batch's own), and the buffers alternate across calls, so
  // that an admission's upload never waits for the one before it to be encoded.
  void encode_on_device(const float* pixels, int count) { encode_on_device(*workspace_, pixels, count); }
  void encode_on_device(cuda::Workspace<T>& workspace, const float* pixels, int count) {
    const size_t image_outputs = size_t(config_.encoder.sequence_length()) * config_.encoder.hidden_size;
    const int piece = workspace.encoder.chunk();
    const cudaStream_t encoding = workspace.encoder.stream(), copying = copy_stream_->get();
    for (int first = 0; first < count; first += piece) {
      const int images = std::min(piece, count - first);
      const int index = pieces_uploaded_++ % 2;
      // The buffer's previous piece must be encoded before it is overwritten.
      TROCR_CUDA_CHECK(cudaStreamWaitEvent(copying, encoded_[index]));
      TROCR_CUDA_CHECK(cudaMemcpyAsync(pixels_[index].data(), pixels + first * image_values(),
                                       images * image_values() * sizeof(float), cudaMemcpyHostToDevice, copying));
      TROCR_CUDA_CHECK(cudaEventRecord(uploaded_[index], copying));
      TROCR_CUDA_CHECK(cudaStreamWaitEvent(encoding, uploaded_[index]));
      workspace.encoder.encode(pixels_[index].data(), images, workspace.states.output() + first * image_outputs);
      TROCR_CUDA_CHECK(cudaEventRecord(encoded_[index], encoding));
    }
  }

  const ModelConfig& config_;
  int device_ = 0;
  bool profile_ = false;
  cudaEvent_t events_[3] = {};
  std::string report_;
  std::unique_ptr<cuda::Stream> stream_, copy_stream_;  // before everything that enqueues on them
  cudaEvent_t uploaded_[2] = {}, encoded_[2] = {};
  std::unique_ptr<cuda::DeviceWeights<T>> weights_;
  std::unique_ptr<cuda::Gemm> gemm_;
  std::unique_ptr<cuda::Workspace<T>> workspace_;
  std::unique_ptr<HostSearch> host_beams_;
  cuda::DeviceBuffer<float> pixels_[2];
  int64_t pieces_uploaded_ = 0;  // the next piece goes to pixels_[pieces_uploaded_ % 2]
};

template <typename T>
std::unique_ptr<LineBatch> CudaBackend<T>::open_line_batch(const SearchOptions& options, int capacity) {
  if (options.num_return_sequences != 1 || capacity < 1) return nullptr;
  if (options.num_beams != 1 &&
      cuda::choose_beam_bookkeeping(options.num_beams, config_.decoder.vocab_size) != cuda::BeamBookkeeping::Device) {
    return nullptr;  // the host-driven beam search runs whole batches
  }
  use_device();
  const cuda::LineBatchHost<T> host{*weights_,
                                    config_,
                                    *gemm_,
                                    device_,
                                    profile_,
                                    [this](cuda::Workspace<T>& workspace, const float* pixels, int count) {
                                      encode_on_device(workspace, pixels, count);
                                    },
                                    [this](int chunk) { grow_pixel_buffers(chunk); },
                                    [this] { TROCR_CUDA_CHECK(cudaStreamSynchronize(copy_stream_->get())); },
                                    [this] { synchronize_own_streams(); }};
  return cuda::open_line_batch(host, options, capacity);
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(ModelDirectory& model, int device_index, const std::string& dtype,
                                           const BackendOptions& options) {
  if (dtype == "fp16") return std::make_unique<CudaBackend<__half>>(model, device_index, options);
  if (dtype == "fp8") return std::make_unique<CudaBackend<__half>>(model, device_index, options, true);
  if (dtype == "bf16") return std::make_unique<CudaBackend<__nv_bfloat16>>(model, device_index, options);
  return std::make_unique<CudaBackend<float>>(model, device_index, options);
}

}  // namespace trocr

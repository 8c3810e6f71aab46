#include "common/check.h"
#include "engine/backend.h"
#include "model/decoder.h"
#include "model/encoder.h"

namespace trocr {
namespace {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(const ModelDirectory& model) : model_(model) {}

  std::vector<float> encode(const float* pixels, int count) override {
    return encode_images(model_.weights.encoder, model_.config.encoder, pixels, count);
  }

  std::vector<std::vector<Hypothesis>> generate(const float* pixels, int count,
                                                const SearchOptions& options) override {
    const std::vector<float> hidden = encode(pixels, count);
    CpuDecoder decoder(model_.weights, model_.config);
    decoder.set_encoder_output(hidden.data(), count, model_.config.encoder.sequence_length());
    return trocr::generate(decoder, count, options);
  }

  std::vector<float> decoder_logits(const float* pixels, const std::vector<int>& ids) override {
    const std::vector<float> hidden = encode(pixels, 1);
    CpuDecoder decoder(model_.weights, model_.config);
    decoder.set_encoder_output(hidden.data(), 1, model_.config.encoder.sequence_length());
    return teacher_forced_logits(decoder, ids);
  }

 private:
  const ModelDirectory& model_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const ModelDirectory& model) {
  return std::make_unique<CpuBackend>(model);
}

std::unique_ptr<Backend> make_backend(const ModelDirectory& model, const std::string& device,
                                      const std::string& dtype, [[maybe_unused]] const BackendOptions& options) {
  if (dtype != "fp32" && dtype != "fp16" && dtype != "bf16") {
    fail("dtype '{}': expected fp32, fp16 or bf16", dtype);
  }
  if (device == "cpu") {
    if (dtype != "fp32") fail("dtype '{}': the CPU engine computes in fp32", dtype);
    return make_cpu_backend(model);
  }
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (device.size() > 5) {
      try {
        size_t used = 0;
        index = std::stoi(device.substr(5), &used);
        if (used != device.size() - 5 || index < 0) throw std::invalid_argument("index");
      } catch (const std::exception&) {
        fail("device '{}': expected cuda:N with a GPU index N", device);
      }
    }
#ifdef TROCR_WITH_CUDA
    return make_cuda_backend(model, index, dtype, options);
#else
    fail("device '{}': this build has no CUDA engine (configure with TROCR_CUDA=ON)", device);
#endif
  }
  fail("device '{}': expected cpu, cuda or cuda:N", device);
}

}  // namespace trocr

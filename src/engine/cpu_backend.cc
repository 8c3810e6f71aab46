#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "common/check.h"
#include "common/pool.h"
#include "common/scratch.h"
#include "cpu/linear.h"
#include "cpu/threads.h"
#include "decoding/greedy_line.h"
#include "engine/backend.h"
#include "model/decoder.h"
#include "model/encoder.h"

namespace trocr {
namespace {

// A decoder and the encoder's output buffer, kept from one generate call to the next.
struct Workspace {
  explicit Workspace(const ModelDirectory& model) : decoder(model.weights, model.config) {}
  CpuDecoder decoder;
  Scratch encoder_states;
};

// The images' encoder states (last_hidden_state) into `states`.
const float* encode_into(Scratch& states, const ModelDirectory& model, const float* pixels, int count) {
  const EncoderConfig& encoder = model.config.encoder;
  float* values = states.floats(size_t(count) * encoder.sequence_length() * encoder.hidden_size);
  encode_images(model.weights.encoder, encoder, pixels, count, values);
  return values;
}

// In-flight greedy lines on the CPU: one decoder whose slot s holds line s and image s.
class CpuLineBatch : public LineBatch {
 public:
  CpuLineBatch(const ModelDirectory& model, const SearchOptions& options, int capacity, int threads)
      : model_(model), options_(options), threads_(threads), decoder_(model.weights, model.config),
        lines_(capacity) {
    const EncoderConfig& encoder = model.config.encoder;
    decoder_.reserve_images(capacity, encoder.sequence_length());
    std::vector<int> slots(capacity);
    for (int s = 0; s < capacity; ++s) slots[s] = s;
    decoder_.begin(slots);
    for (int s = capacity - 1; s >= 0; --s) free_.push_back(s);
  }

  int capacity() const override { return static_cast<int>(lines_.size()); }
  int active() const override { return capacity() - static_cast<int>(free_.size()); }

  std::vector<int> admit(const float* pixels, int count) override {
    if (count > static_cast<int>(free_.size())) fail("line batch: {} images for {} free lines", count, free_.size());
    if (count <= 0) return {};
    cpu::set_threads(threads_);
    const float* states = encode_into(states_, model_, pixels, count);
    std::vector<int> slots;
    for (int i = 0; i < count; ++i) {
      slots.push_back(free_.back());
      free_.pop_back();
      lines_[slots.back()].emplace(options_);
    }
    decoder_.load_images(states, slots);
    return slots;
  }

  std::vector<Ended> step() override {
    cpu::set_threads(threads_);
    std::vector<int> slots, tokens, positions;
    std::vector<GreedyLine*> stepped;
    for (int s = 0; s < capacity(); ++s) {
      if (!lines_[s]) continue;
      slots.push_back(s);
      tokens.push_back(lines_[s]->ids().back());
      positions.push_back(lines_[s]->position());
      stepped.push_back(&*lines_[s]);
    }
    if (slots.empty()) return {};
    const int vocab = decoder_.vocab_size();
    logits_.resize(slots.size() * size_t(vocab));
    decoder_.step_rows(slots, tokens, positions, logits_.data());
    advance_lines(stepped, options_, logits_.data(), vocab);
    std::vector<Ended> ended;
    for (int slot : slots) {
      std::optional<GreedyLine>& line = lines_[slot];
      if (!line->finished(options_)) continue;
      ended.push_back({slot, line->take_hypothesis()});
      line.reset();
      free_.push_back(slot);
    }
    return ended;
  }

 private:
  const ModelDirectory& model_;
  const SearchOptions options_;
  const int threads_;
  CpuDecoder decoder_;
  Scratch states_;
  std::vector<std::optional<GreedyLine>> lines_;  // by slot; empty where free
  std::vector<int> free_;
  std::vector<float> logits_;
};

class CpuBackend : public Backend {
 public:
  CpuBackend(const ModelDirectory& model, int threads) : model_(model), threads_(threads) {}

  std::vector<float> encode(const float* pixels, int count) override {
    use_threads();
    return encode_images(model_.weights.encoder, model_.config.encoder, pixels, count);
  }

  std::vector<std::vector<Hypothesis>> generate(const float* pixels, int count,
                                                const SearchOptions& options) override {
    use_threads();
    Pool<Workspace>::Lease lease(workspaces_);
    encode_for_decoder(*lease, pixels, count);
    return HostSearch(lease->decoder).search(count, options);
  }

  std::unique_ptr<LineBatch> open_line_batch(const SearchOptions& options, int capacity) override {
    if (options.num_beams != 1 || options.num_return_sequences != 1 || capacity < 1) return nullptr;
    return std::make_unique<CpuLineBatch>(model_, options, capacity, threads_);
  }

  std::vector<float> decoder_logits(const float* pixels, const std::vector<int>& ids) override {
    use_threads();
    Pool<Workspace>::Lease lease(workspaces_);
    encode_for_decoder(*lease, pixels, 1);
    return teacher_forced_logits(lease->decoder, ids);
  }

 private:
  // The images' encoder states into the workspace, and its decoder pointed at them.
  void encode_for_decoder(Workspace& workspace, const float* pixels, int count) const {
    const float* states = encode_into(workspace.encoder_states, model_, pixels, count);
    workspace.decoder.set_encoder_output(states, count, model_.config.encoder.sequence_length());
  }

  // OpenMP's thread count belongs to the calling thread: set it on whichever thread calls in.
  void use_threads() const { cpu::set_threads(threads_); }

  const ModelDirectory& model_;
  const int threads_;
  // A workspace per concurrent call (the backend may be called from several threads at once).
  Pool<Workspace> workspaces_{[this] { return std::make_unique<Workspace>(model_); }};
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(ModelDirectory& model, const std::string& dtype,
                                          const BackendOptions& options) {
  if (dtype == "bf16") {
    cpu::set_threads(options.threads);
    cpu::convert_to_bf16(model.weights);
  } else if (dtype != "fp32") {
    fail("dtype '{}': the CPU engine computes in fp32 or bf16", dtype);
  }
  return std::make_unique<CpuBackend>(model, options.threads);
}

const std::vector<std::string>& engine_dtypes() {
  static const std::vector<std::string> dtypes{"fp32", "fp16", "bf16", "fp8"};
  return dtypes;
}

std::unique_ptr<Backend> make_backend(ModelDirectory& model, const std::string& device,
                                      const std::string& dtype, [[maybe_unused]] const BackendOptions& options) {
  if (std::find(engine_dtypes().begin(), engine_dtypes().end(), dtype) == engine_dtypes().end()) {
    fail("dtype '{}': expected one of {}", dtype, fmt::join(engine_dtypes(), ", "));
  }
  if (device == "cpu") {
    return make_cpu_backend(model, dtype, options);
  }
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (device != "cuda") {  // "cuda:" and what follows it
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

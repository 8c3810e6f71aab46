#pragma once
// Where the model runs. The Recognizer hands a backend preprocessed pixels and search
// settings; a backend owns its weights and workspaces. Backends are made in one place
// (make_backend), so nothing above this line knows which device computes.
#include <memory>
#include <string>
#include <vector>

#include "common/scratch.h"
#include "decoding/search.h"
#include "model/model_directory.h"

namespace trocr {

// In-flight batching (greedy search): lines join between decoding steps and leave as soon as
// they end, so that a new image never waits for a running batch's slowest line. One caller at a
// time.
class LineBatch {
 public:
  struct Ended {
    int line;
    Hypothesis hypothesis;
  };
  virtual ~LineBatch() = default;
  virtual int capacity() const = 0;  // lines at once
  virtual int active() const = 0;
  // A line for each of `count` preprocessed images ([count, 3, height, width]; count <= the
  // free lines): starts their encoder pass and returns their line numbers, each held until its
  // line ends. Their lines step from a later step on (the CUDA engine's, the first after their
  // encoder pass is done: it runs beside the steps).
  virtual std::vector<int> admit(const float* pixels, int count) = 0;
  // One decoding step for every line that steps; the lines whose end it learned (the CUDA
  // engine's a step behind: it launches a step before it reads the last one's states, so a call
  // may return none, and calls go on while active() > 0). The pixels of earlier admissions may
  // be overwritten once it returns.
  virtual std::vector<Ended> step() = 0;
  // Where the steps and admissions spent their time since the last report, when the backend
  // was asked to profile; resets.
  virtual std::string profile_report() { return ""; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // pixels: [count, 3, height, width]. Returns last_hidden_state [count, sequence, hidden].
  virtual std::vector<float> encode(const float* pixels, int count) = 0;
  virtual std::vector<std::vector<Hypothesis>> generate(const float* pixels, int count,
                                                        const SearchOptions& options) = 0;
  // Decoder logits for teacher-forced ids, one step at a time: [ids.size() - 1, vocab].
  virtual std::vector<float> decoder_logits(const float* pixels, const std::vector<int>& ids) = 0;
  // Lines decoded in flight, `capacity` at once, with these settings; nullptr where this backend
  // cannot (Recognizer::open_stream says where), and callers use generate's whole batches.
  virtual std::unique_ptr<LineBatch> open_line_batch(const SearchOptions&, int /*capacity*/) { return nullptr; }
  // Phase timings of the last generate call, when profiling was asked for.
  virtual std::string profile_report() const { return ""; }
  // How to allocate host memory for the pixels given to generate (default: plain memory).
  virtual HostAllocator pixel_allocator() const { return {}; }
};

struct BackendOptions {
  int threads = 0;       // the CPU engine's threads (0: one per physical core)
  int max_batch = 8;     // images per generate call, for the CUDA engine's memory plan
  bool profile = false;  // the CUDA engine times the phases of each generate call
};

// The dtypes a backend computes in: fp32, fp16, bf16 and fp8 (fp16 with the encoder's linear
// products in E4M3, CUDA on Hopper or newer); the CPU runs fp32 or bf16.
const std::vector<std::string>& engine_dtypes();

// device: "cpu", "cuda" or "cuda:N"; dtype: one of engine_dtypes(). A backend may prepare the
// model's weights for itself (the CPU's bf16 copies, the CUDA engine's E4M3 ones).
std::unique_ptr<Backend> make_backend(ModelDirectory& model, const std::string& device,
                                      const std::string& dtype, const BackendOptions& options = {});

std::unique_ptr<Backend> make_cpu_backend(ModelDirectory& model, const std::string& dtype = "fp32",
                                          const BackendOptions& options = {});
#ifdef TROCR_WITH_CUDA
// Uploads the weights and releases the host's copy (model.weights is empty afterwards).
std::unique_ptr<Backend> make_cuda_backend(ModelDirectory& model, int device_index,
                                           const std::string& dtype, const BackendOptions& options);
#endif

}  // namespace trocr

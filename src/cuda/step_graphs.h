#pragma once
// Decode steps as CUDA graphs, captured on first use and replayed after. A graph bakes in every
// pointer and launch parameter of its kernels, so a replay is only right when nothing the
// capture read has changed. The key is therefore not listed by hand: a step is enqueued by a
// function that takes nothing but its spec (a captureless function pointer), so the spec, byte
// for byte, is everything the capture depends on besides the fixed buffers of the objects it
// names (planned once, never moved: see DecodeWorkspace). Specs hold integers, enums and
// pointers only, without padding, so that equal bytes mean equal specs.
#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <typeinfo>

namespace trocr::cuda {

class StepGraphs {
 public:
  explicit StepGraphs(cudaStream_t stream) : stream_(stream) {}
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  template <typename Spec>
  void replay(const Spec& spec, void (*enqueue)(const Spec&)) {
    static_assert(std::has_unique_object_representations_v<Spec>,
                  "a step spec holds integers, enums and pointers only, without padding");
    std::string key(typeid(Spec).name());
    key.append(reinterpret_cast<const char*>(&enqueue), sizeof(enqueue));
    key.append(reinterpret_cast<const char*>(&spec), sizeof(Spec));
    launch(key, [&] { enqueue(spec); });
  }

  // How many graphs were captured so far (a replay of a known spec captures none).
  int captures() const { return captures_; }

 private:
  void launch(const std::string& key, const std::function<void()>& enqueue);

  cudaStream_t stream_;
  std::map<std::string, cudaGraphExec_t> graphs_;
  int captures_ = 0;
};

}  // namespace trocr::cuda

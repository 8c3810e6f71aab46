#include "cuda/step_graphs.h"

#include "cuda/cuda_check.h"

namespace trocr::cuda {

StepGraphs::~StepGraphs() {
  for (auto& entry : graphs_) cudaGraphExecDestroy(entry.second);
}

void StepGraphs::launch(const std::string& key, const std::function<void()>& enqueue) {
  auto found = graphs_.find(key);
  if (found == graphs_.end()) {
    // Beam search meets a new row count whenever its batch shrinks: keep a bounded set.
    constexpr size_t kMaxGraphs = 64;
    if (graphs_.size() >= kMaxGraphs) {
      for (auto& entry : graphs_) cudaGraphExecDestroy(entry.second);
      graphs_.clear();
    }
    cudaGraph_t graph;
    TROCR_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    enqueue();
    TROCR_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t executable;
    const cudaError_t status = cudaGraphInstantiate(&executable, graph, 0);
    cudaGraphDestroy(graph);
    TROCR_CUDA_CHECK(status);
    found = graphs_.emplace(key, executable).first;
    ++captures_;
  }
  TROCR_CUDA_CHECK(cudaGraphLaunch(found->second, stream_));
}

}  // namespace trocr::cuda

// StepGraphs: a spec seen before replays its graph without capturing; any byte of a spec that
// differs captures a new graph, and that graph does what the new spec says.
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/step_graphs.h"
#include "support/gpu_test.h"

namespace trocr::test {
namespace {

cudaStream_t capture_stream = nullptr;  // the stream the graphs capture on

struct FillSpec {
  int* target;
  int value;
  int count;
};

// Writes value into target[0 .. count) by a memset per element (graph-capturable).
void fill(const FillSpec& spec) {
  for (int i = 0; i < spec.count; ++i) {
    TROCR_CUDA_CHECK(cudaMemsetAsync(spec.target + i, spec.value, 1, capture_stream));
  }
}

TEST(CudaStepGraphs, CaptureOncePerSpecAndReplayWhatTheSpecSays) {
  TROCR_SKIP_WITHOUT_GPU();
  cudaStream_t stream;
  TROCR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  capture_stream = stream;
  {
    cuda::StepGraphs graphs(stream);
    cuda::DeviceBuffer<int> buffer(4);
    TROCR_CUDA_CHECK(cudaMemset(buffer.data(), 0, 4 * sizeof(int)));
    FillSpec spec{buffer.data(), 1, 2};
    graphs.replay(spec, &fill);
    graphs.replay(spec, &fill);
    EXPECT_EQ(graphs.captures(), 1) << "the same spec replays";
    spec.value = 2;
    spec.count = 4;
    graphs.replay(spec, &fill);
    EXPECT_EQ(graphs.captures(), 2) << "a changed spec captures anew";
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
    // Each memset writes one byte, an int's lowest (little-endian).
    EXPECT_EQ(buffer.download(), std::vector<int>(4, 2));
    spec.value = 1;
    spec.count = 2;
    graphs.replay(spec, &fill);
    EXPECT_EQ(graphs.captures(), 2) << "the first spec's graph is still known";
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
    EXPECT_EQ(buffer.download(), (std::vector<int>{1, 1, 2, 2}));
  }
  TROCR_CUDA_CHECK(cudaStreamDestroy(stream));
}

}  // namespace
}  // namespace trocr::test

#pragma once
// The probes' clock: the median of `runs` CUDA-event timings of launch() on stream, after
// `warm_ups` untimed calls.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

template <typename Launch>
float median_ms(Launch&& launch, cudaStream_t stream, int warm_ups, int runs) {
  for (int i = 0; i < warm_ups; ++i) launch();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> times;
  for (int i = 0; i < runs; ++i) {
    cudaEventRecord(start, stream);
    launch();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

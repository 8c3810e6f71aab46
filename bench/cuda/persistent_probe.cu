// What a persistent decoder step (#16, docs/CUDA_ENGINE.md "Next: the persistent decoder") can
// cost before any of its arithmetic: one cooperative grid (a block per SM) streams a step's
// weights stage by stage, each block reading its slice of every stage, with a grid barrier
// between stages. Prints JSON: the barrier's latency, the weight streaming rate without barriers,
// and a trocr-base step's time with them (the design's floor), against one launch per stage;
// then (added after the first run, which showed each stage boundary costing ~2 us) the same with
// each block's next slice prefetched into L2 before every barrier, and with four loads in flight
// per thread instead of one.
//
//   persistent_probe [--threads 512] [--repeat 50]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call)                                                                   \
  do {                                                                                \
    cudaError_t status_ = (call);                                                     \
    if (status_ != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(status_)); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

namespace {

struct GridBarrier {
  unsigned int arrived;
  unsigned int generation;
};

__device__ unsigned int load_acquire(const unsigned int* address) {
  unsigned int value;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(value) : "l"(address) : "memory");
  return value;
}

// Sense by generation: the last block to arrive resets the count and opens the next generation.
__device__ void grid_barrier(GridBarrier* barrier, unsigned int& generation) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(&barrier->arrived, 1u) == gridDim.x - 1) {
      barrier->arrived = 0;
      __threadfence();
      atomicExch(&barrier->generation, generation + 1);
    } else {
      while (load_acquire(&barrier->generation) == generation) {
      }
    }
  }
  ++generation;
  __syncthreads();
}

// The barrier's generation counts on across launches: the host passes where it stands.
__global__ void barriers_only(GridBarrier* barrier, int count, unsigned int generation) {
  for (int i = 0; i < count; ++i) grid_barrier(barrier, generation);
}

// Stage s covers bytes [offsets[s], offsets[s+1]) of `weights`; block b reads its 1/grid slice.
__device__ unsigned int read_slice(const uint4* weights, size_t begin, size_t end) {
  const size_t words = (end - begin) / 16, per_block = (words + gridDim.x - 1) / gridDim.x;
  const size_t first = begin / 16 + blockIdx.x * per_block;
  const size_t last = min(first + per_block, begin / 16 + words);
  unsigned int sum = 0;
  for (size_t i = first + threadIdx.x; i < last; i += blockDim.x) {
    uint4 value;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(value.x), "=r"(value.y), "=r"(value.z), "=r"(value.w) : "l"(weights + i));
    sum += value.x ^ value.y ^ value.z ^ value.w;
  }
  return sum;
}

// The same with four loads in flight per thread: how much of the rate is memory-level parallelism.
__device__ unsigned int read_slice_unrolled(const uint4* weights, size_t begin, size_t end) {
  const size_t words = (end - begin) / 16, per_block = (words + gridDim.x - 1) / gridDim.x;
  const size_t first = begin / 16 + blockIdx.x * per_block;
  const size_t last = min(first + per_block, begin / 16 + words);
  unsigned int sum = 0;
  size_t i = first + threadIdx.x;
  for (; i + 3 * blockDim.x < last; i += 4 * blockDim.x) {
    uint4 value[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                   : "=r"(value[u].x), "=r"(value[u].y), "=r"(value[u].z), "=r"(value[u].w)
                   : "l"(weights + i + u * blockDim.x));
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) sum += value[u].x ^ value[u].y ^ value[u].z ^ value[u].w;
  }
  for (; i < last; i += blockDim.x) sum += weights[i].x;
  return sum;
}

// Before a barrier, the block asks L2 for the first `bytes` of its slice of the next stage: the
// weights do not depend on the stage's results, so the barrier's wait can overlap their reading.
__device__ void prefetch_next_slice(const char* weights, size_t begin, size_t end, size_t bytes) {
  const size_t per_block = ((end - begin) / 16 + gridDim.x - 1) / gridDim.x * 16;
  const size_t first = begin + blockIdx.x * per_block;
  const size_t last = min(min(first + per_block, end), first + bytes);
  for (size_t line = first + threadIdx.x * 128; line < last; line += blockDim.x * 128) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(weights + line));
  }
}

// mode 0: no barriers; 1: barriers; 2: barriers with the next slice prefetched; 3: unrolled
// loads, no barriers; 4: unrolled loads, barriers and the prefetch.
__global__ void stream_stages(const uint4* weights, const size_t* offsets, int stages, GridBarrier* barrier,
                              int mode, unsigned int generation, unsigned int* sink, size_t prefetch_bytes) {
  unsigned int sum = 0;
  const bool unrolled = mode >= 3, barriers = mode == 1 || mode == 2 || mode == 4, prefetch = mode == 2 || mode == 4;
  for (int s = 0; s < stages; ++s) {
    sum += unrolled ? read_slice_unrolled(weights, offsets[s], offsets[s + 1])
                    : read_slice(weights, offsets[s], offsets[s + 1]);
    if (prefetch && s + 1 < stages) {
      prefetch_next_slice(reinterpret_cast<const char*>(weights), offsets[s + 1], offsets[s + 2], prefetch_bytes);
    }
    if (barriers) grid_barrier(barrier, generation);
  }
  if (sum == 0x12345678u) *sink = sum;  // keeps the loads
}

__global__ void one_stage(const uint4* weights, size_t begin, size_t end, unsigned int* sink) {
  const unsigned int sum = read_slice(weights, begin, end);
  if (sum == 0x12345678u) *sink = sum;
}

// trocr-base's decode step at batch 1, fp16: per layer Q/K/V, self-attention (a few KB of cache),
// its output, the cross-attention query, the cross-attention over 577 cached keys and values,
// its output, FFN1, FFN2; then the output projection.
std::vector<size_t> trocr_base_step() {
  const size_t MB = 1u << 20;
  std::vector<size_t> bytes;
  for (int layer = 0; layer < 12; ++layer) {
    for (size_t stage : {6 * MB, size_t(64) << 10, 2 * MB, 2 * MB, size_t(2.36 * MB), 2 * MB, 8 * MB, 8 * MB}) {
      bytes.push_back(stage);
    }
  }
  bytes.push_back(size_t(1024) * 50265 * 2);
  return bytes;
}

float median(std::vector<float> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 512, repeat = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
  }
  cudaDeviceProp properties;
  CHECK(cudaGetDeviceProperties(&properties, 0));
  const int blocks = properties.multiProcessorCount;
  const std::vector<size_t> stage_bytes = trocr_base_step();
  std::vector<size_t> offsets = {0};
  for (size_t bytes : stage_bytes) offsets.push_back(offsets.back() + (bytes + 4095) / 4096 * 4096);
  const size_t total = offsets.back();
  // Two copies of the step's weights, used in turn, so that L2 (50-60 MB) holds none of a run.
  uint4* weights;
  size_t* device_offsets;
  GridBarrier* barrier;
  unsigned int* sink;
  CHECK(cudaMalloc(&weights, 2 * total));
  CHECK(cudaMemset(weights, 1, 2 * total));
  CHECK(cudaMalloc(&device_offsets, 2 * offsets.size() * sizeof(size_t)));
  std::vector<size_t> both = offsets;
  for (size_t offset : offsets) both.push_back(offset + total);
  CHECK(cudaMemcpy(device_offsets, both.data(), both.size() * sizeof(size_t), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&barrier, sizeof(GridBarrier)));
  CHECK(cudaMemset(barrier, 0, sizeof(GridBarrier)));
  CHECK(cudaMalloc(&sink, sizeof(unsigned int)));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  auto time_ms = [&](auto launch) {
    std::vector<float> times;
    for (int r = 0; r < repeat + 5; ++r) {
      CHECK(cudaEventRecord(start));
      launch(r % 2);
      CHECK(cudaEventRecord(stop));
      CHECK(cudaEventSynchronize(stop));
      float ms;
      CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (r >= 5) times.push_back(ms);  // after warm-up
    }
    return median(times);
  };
  const int stages = int(stage_bytes.size());
  auto cooperative = [&](void* kernel, void** arguments) {
    CHECK(cudaLaunchCooperativeKernel(kernel, dim3(blocks), dim3(threads), arguments, 0, nullptr));
  };
  const int barrier_count = 1000;
  unsigned int generation = 0;  // the barrier's, after every launch so far
  const float barriers_ms = time_ms([&](int) {
    int count = barrier_count;
    void* arguments[] = {&barrier, &count, &generation};
    cooperative(reinterpret_cast<void*>(barriers_only), arguments);
    generation += barrier_count;
  });
  size_t prefetch_bytes = 32 << 10;
  auto stream = [&](int mode) {
    return time_ms([&](int copy) {
      const size_t* offsets_of_copy = device_offsets + copy * offsets.size();
      void* arguments[] = {&weights, &offsets_of_copy, const_cast<int*>(&stages), &barrier, &mode,
                           &generation, &sink, &prefetch_bytes};
      cooperative(reinterpret_cast<void*>(stream_stages), arguments);
      if (mode == 1 || mode == 2 || mode == 4) generation += stages;
    });
  };
  const float streaming_ms = stream(0), step_ms = stream(1), prefetched_ms = stream(2);
  const float unrolled_ms = stream(3), unrolled_prefetched_ms = stream(4);
  // Today's shape: one launch per stage, captured in a graph.
  cudaStream_t capture_stream;
  CHECK(cudaStreamCreate(&capture_stream));
  cudaGraphExec_t graphs[2];
  for (int copy = 0; copy < 2; ++copy) {
    cudaGraph_t graph;
    CHECK(cudaStreamBeginCapture(capture_stream, cudaStreamCaptureModeGlobal));
    for (int s = 0; s < stages; ++s) {
      one_stage<<<blocks, threads, 0, capture_stream>>>(weights, copy * total + offsets[s], copy * total + offsets[s + 1], sink);
    }
    CHECK(cudaStreamEndCapture(capture_stream, &graph));
    CHECK(cudaGraphInstantiate(&graphs[copy], graph, 0));
  }
  const float launches_ms = time_ms([&](int copy) { CHECK(cudaGraphLaunch(graphs[copy], nullptr)); });
  const double gigabytes = double(total) / 1e9;
  std::printf("{\"gpu\": \"%s\", \"blocks\": %d, \"threads\": %d, \"repeat\": %d, \"stages\": %d, \"step_bytes\": %zu,\n"
              " \"grid_barrier_us\": %.3f,\n"
              " \"stream_without_barriers_ms\": %.4f, \"stream_tb_per_s\": %.3f,\n"
              " \"step_with_barriers_ms\": %.4f, \"step_one_launch_per_stage_ms\": %.4f,\n"
              " \"step_with_barriers_next_slice_prefetched_ms\": %.4f, \"prefetch_bytes_per_block\": %zu,\n"
              " \"stream_four_loads_in_flight_ms\": %.4f, \"stream_four_loads_tb_per_s\": %.3f,\n"
              " \"step_four_loads_barriers_prefetched_ms\": %.4f}\n",
              properties.name, blocks, threads, repeat, stages, total, barriers_ms * 1000.0 / barrier_count,
              streaming_ms, gigabytes / streaming_ms, step_ms, launches_ms, prefetched_ms, prefetch_bytes,
              unrolled_ms, gigabytes / unrolled_ms, unrolled_prefetched_ms);
  return 0;
}

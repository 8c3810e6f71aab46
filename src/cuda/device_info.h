#pragma once
// What the CUDA runtime reports about the GPUs of this machine.
#include <string>
#include <vector>

namespace trocr {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  size_t memory_bytes = 0;
};

struct CudaDevices {
  std::vector<CudaDeviceInfo> devices;
  std::string absent_because;  // why `devices` is empty: no GPU, or no NVIDIA driver installed
};

// A machine without a GPU or without NVIDIA's driver has no devices, and says which. Any other
// CUDA error (a driver older than this build's runtime, a GPU that fails to initialize) is a
// trocr::Error: a broken GPU machine must never pass for a machine without a GPU.
CudaDevices query_cuda_devices();

}  // namespace trocr

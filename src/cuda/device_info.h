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

// Empty when there is no driver or no GPU (never throws for that).
std::vector<CudaDeviceInfo> list_cuda_devices();

}  // namespace trocr

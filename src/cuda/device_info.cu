#include "cuda/device_info.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include "common/check.h"

namespace trocr {
namespace {

// The runtime reports a missing driver library and a driver too old for it alike
// (cudaErrorInsufficientDriver); only the second is a fault of a GPU machine.
bool driver_library_installed() {
  void* library = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (library == nullptr) return false;
  dlclose(library);
  return true;
}

}  // namespace

CudaDevices query_cuda_devices() {
  CudaDevices result;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    if (status == cudaErrorNoDevice) {
      result.absent_because = "no CUDA device (the driver sees no GPU)";
      return result;
    }
    if (status == cudaErrorInsufficientDriver && !driver_library_installed()) {
      result.absent_because = "no CUDA device (no NVIDIA driver: libcuda.so.1 is not installed)";
      return result;
    }
    fail("the CUDA device query failed: {} ({})", cudaGetErrorString(status), cudaGetErrorName(status));
  }
  if (count == 0) result.absent_because = "no CUDA device (the driver sees no GPU)";
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    const cudaError_t property_status = cudaGetDeviceProperties(&properties, index);
    if (property_status != cudaSuccess) {
      fail("cuda:{}: reading its properties failed: {}", index, cudaGetErrorString(property_status));
    }
    CudaDeviceInfo info;
    info.index = index;
    info.name = properties.name;
    info.compute_major = properties.major;
    info.compute_minor = properties.minor;
    info.multiprocessors = properties.multiProcessorCount;
    info.memory_bytes = properties.totalGlobalMem;
    result.devices.push_back(info);
  }
  return result;
}

}  // namespace trocr

#pragma once
// GPU tests skip on a machine without a GPU, and say why. With TROCR_REQUIRE_GPU=1 (the GPU
// machine's scripts/device_gpu_tests.sh) that skip is a failure, so a driver fault or a GPU
// that vanished can never turn the GPU suite into a row of skips that reads as a pass.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cuda/device_info.h"

namespace trocr::test {

inline bool gpu_required() {
  const char* value = std::getenv("TROCR_REQUIRE_GPU");
  return value != nullptr && std::string(value) == "1";
}

}  // namespace trocr::test

// In a test body or SetUp: returns from it, skipped or failed, when there is no GPU.
#define TROCR_SKIP_WITHOUT_GPU()                                                              \
  do {                                                                                        \
    const ::trocr::CudaDevices found_gpus = ::trocr::query_cuda_devices();                    \
    if (found_gpus.devices.empty()) {                                                         \
      if (::trocr::test::gpu_required()) FAIL() << found_gpus.absent_because << " (TROCR_REQUIRE_GPU=1)"; \
      GTEST_SKIP() << found_gpus.absent_because;                                              \
    }                                                                                         \
  } while (0)

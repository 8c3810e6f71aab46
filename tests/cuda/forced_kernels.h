#pragma once
// Forces CUDA kernel choices for the engines a test makes (kernel_choice.h), and restores the
// run's own (TROCR_KERNELS) when it goes.
#include <cstdlib>
#include <string>

#include "cuda/kernel_choice.h"

namespace trocr::test {

class ForcedKernels {
 public:
  explicit ForcedKernels(const std::string& spec) { cuda::set_kernel_overrides(spec); }
  ~ForcedKernels() {
    const char* run = std::getenv("TROCR_KERNELS");
    cuda::set_kernel_overrides(run == nullptr ? "" : run);
  }
  ForcedKernels(const ForcedKernels&) = delete;
  ForcedKernels& operator=(const ForcedKernels&) = delete;
};

}  // namespace trocr::test

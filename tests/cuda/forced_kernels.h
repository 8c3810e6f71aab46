#pragma once
// Forces CUDA kernel choices for the engines a test makes (kernel_choice.h) on top of the run's
// own (TROCR_KERNELS: engines of a portable run stay portable, so that a test comparing two
// engines compares them on the same kernels), and restores the run's when it goes.
#include <cstdlib>
#include <string>

#include "cuda/kernel_choice.h"

namespace trocr::test {

class ForcedKernels {
 public:
  explicit ForcedKernels(const std::string& spec) { cuda::set_kernel_overrides(run_kernels() + "," + spec); }
  ~ForcedKernels() { cuda::set_kernel_overrides(run_kernels()); }
  ForcedKernels(const ForcedKernels&) = delete;
  ForcedKernels& operator=(const ForcedKernels&) = delete;

 private:
  static std::string run_kernels() {
    const char* run = std::getenv("TROCR_KERNELS");
    return run == nullptr ? "" : run;
  }
};

}  // namespace trocr::test

#pragma once
// The activations as HF computes them (gelu is the erf form), for kernels that apply one in
// their epilogue.
#include "trocr/config.h"

namespace trocr::cuda {

__device__ __forceinline__ float activate(float x, Activation activation) {
  if (activation == Activation::Gelu) return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  if (activation == Activation::GeluTanh) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  }
  return x > 0.0f ? x : 0.0f;
}

}  // namespace trocr::cuda

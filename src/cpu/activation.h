#pragma once
// Element-wise activations, in place: gelu (erf form, nn.GELU()), gelu with the tanh
// approximation (gelu_new), relu. fp32 scalar loops with std::erf/std::tanh: the reference the
// CUDA activation kernels are tested against. The CPU engine itself fuses its activations into
// oneDNN's products (cpu/linear.h).
#include <cstdint>

#include "trocr/config.h"

namespace trocr::cpu {

void apply_activation(Activation activation, float* values, int64_t count);

}  // namespace trocr::cpu

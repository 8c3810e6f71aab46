#pragma once
// Element-wise activations, in place: gelu (erf form, nn.GELU()), gelu with the tanh
// approximation (gelu_new), relu. fp32.
#include <cstdint>

#include "trocr/config.h"

namespace trocr::cpu {

void apply_activation(Activation activation, float* values, int64_t count);

}  // namespace trocr::cpu

#include "cpu/activation.h"

#include <cmath>

namespace trocr::cpu {

void apply_activation(Activation activation, float* values, int64_t count) {
  switch (activation) {
    case Activation::Gelu:
      for (int64_t i = 0; i < count; ++i) {
        values[i] = 0.5f * values[i] * (1.0f + std::erf(values[i] * 0.70710678118654752f));
      }
      return;
    case Activation::GeluTanh:
      for (int64_t i = 0; i < count; ++i) {
        const float x = values[i];
        values[i] = 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
      }
      return;
    case Activation::Relu:
      for (int64_t i = 0; i < count; ++i) values[i] = values[i] > 0.0f ? values[i] : 0.0f;
      return;
  }
}

}  // namespace trocr::cpu

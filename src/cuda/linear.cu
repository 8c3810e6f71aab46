#include "cuda/linear.h"

#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {

template <typename T>
void linear(Gemm& gemm, const T* x, int rows, const DeviceLinear<T>& layer, T* y, std::optional<Activation> activation,
            const T* bias_override) {
  const T* bias = bias_override != nullptr ? bias_override : layer.bias_or_null();
  if (small_linear<T, T>(x, layer.weight.data(), bias, y, rows, layer.out, layer.in, activation, gemm.stream())) return;
  const MatmulShape shape = MatmulShape::linear(rows, layer.out, layer.in);
  // cuBLASLt's GELU epilogue is the tanh form: erf GELU (HF's "gelu") is a separate pass.
  Epilogue epilogue = Epilogue::Bias;
  if (activation == Activation::Relu) epilogue = Epilogue::ReluBias;
  if (activation == Activation::GeluTanh) epilogue = Epilogue::GeluTanhBias;
  gemm.matmul<T, T>(shape, x, layer.weight.data(), y, bias, epilogue);
  if (activation == Activation::Gelu) apply_activation<T>(y, int64_t(rows) * layer.out, Activation::Gelu, gemm.stream());
}

template <typename T>
void logits_projection(Gemm& gemm, const T* x, int rows, const T* weight, int vocab, int width, float* logits) {
  if (small_linear<T, float>(x, weight, nullptr, logits, rows, vocab, width, std::nullopt, gemm.stream())) return;
  const MatmulShape shape = MatmulShape::linear(rows, vocab, width);
  gemm.matmul<T, float>(shape, x, weight, logits);
}

#define INSTANTIATE(T)                                                                                            \
  template void linear<T>(Gemm&, const T*, int, const DeviceLinear<T>&, T*, std::optional<Activation>, const T*); \
  template void logits_projection<T>(Gemm&, const T*, int, const T*, int, int, float*);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

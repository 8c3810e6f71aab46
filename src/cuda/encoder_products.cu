#include "cuda/encoder_products.h"

#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/linear.h"

namespace trocr::cuda {

template <typename T>
EncoderProducts<T>::EncoderProducts(const DeviceWeights<T>& weights, Gemm& gemm, int64_t max_rows, int max_width)
    : weights_(weights), gemm_(gemm), fp8_(!weights.encoder_products_fp8.empty()) {
  if (fp8_) {
    staged_.resize(size_t(max_rows) * max_width);
    staged_scales_.resize(max_rows);
  }
}

template <typename T>
typename EncoderProducts<T>::Input EncoderProducts<T>::stage(T* x, int rows, int width,
                                                             std::optional<Activation> activation) {
  if (fp8_) {
    quantize_rows<T>(x, rows, width, activation, staged_.data(), staged_scales_.data(), gemm_.stream());
  } else if (activation) {
    apply_activation<T>(x, int64_t(rows) * width, *activation, gemm_.stream());
  }
  return {x, rows, width};
}

template <typename T>
void EncoderProducts<T>::linear(const Input& x, size_t layer, EncoderProduct product, T* y) {
  const DeviceEncoderLayer<T>& weights = weights_.encoder_layers.at(layer);
  const DeviceLinear<T>& chosen = product == EncoderProduct::Qkv               ? weights.qkv
                                  : product == EncoderProduct::AttentionOutput ? weights.attention_output
                                  : product == EncoderProduct::Intermediate    ? weights.intermediate
                                                                               : weights.output;
  if (!fp8_) return cuda::linear(gemm_, x.values, x.rows, chosen, y);
  const Fp8EncoderLayer& quantized = weights_.encoder_products_fp8.at(layer);
  const Fp8Weight& weight = product == EncoderProduct::Qkv               ? quantized.qkv
                            : product == EncoderProduct::AttentionOutput ? quantized.attention_output
                            : product == EncoderProduct::Intermediate    ? quantized.intermediate
                                                                         : quantized.output;
  gemm_.matmul_row_scaled<T>(MatmulShape::linear(x.rows, chosen.out, chosen.in), staged_.data(), staged_scales_.data(), weight.values.data(), weight.scales.data(),
                             y, chosen.bias.empty() ? nullptr : chosen.bias.data());
}

template class EncoderProducts<float>;
template class EncoderProducts<__half>;
template class EncoderProducts<__nv_bfloat16>;

}  // namespace trocr::cuda

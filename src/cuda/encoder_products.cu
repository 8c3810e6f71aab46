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

namespace {

// A layer's `product`, in the engine's dtype (DeviceEncoderLayer) or in E4M3 (Fp8EncoderLayer).
template <typename Layer>
const auto& chosen_product(const Layer& layer, EncoderProduct product) {
  switch (product) {
    case EncoderProduct::Qkv: return layer.qkv;
    case EncoderProduct::AttentionOutput: return layer.attention_output;
    case EncoderProduct::Intermediate: return layer.intermediate;
    case EncoderProduct::Output: break;
  }
  return layer.output;
}

}  // namespace

template <typename T>
void EncoderProducts<T>::linear(const Input& x, size_t layer, EncoderProduct product, T* y) {
  const DeviceLinear<T>& chosen = chosen_product(weights_.encoder_layers.at(layer), product);
  if (!fp8_) return cuda::linear(gemm_, x.values, x.rows, chosen, y);
  const Fp8Weight& weight = chosen_product(weights_.encoder_products_fp8.at(layer), product);
  gemm_.matmul_row_scaled<T>(MatmulShape::linear(x.rows, chosen.out, chosen.in), staged_.data(),
                             staged_scales_.data(), weight.values.data(), weight.scales.data(), y,
                             chosen.bias_or_null());
}

template class EncoderProducts<float>;
template class EncoderProducts<__half>;
template class EncoderProducts<__nv_bfloat16>;

}  // namespace trocr::cuda

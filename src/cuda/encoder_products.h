#pragma once
// The encoder layers' linear products, in the engine's dtype or, for the "fp8" dtype (the
// weights carry encoder_products_fp8), in E4M3: each input row quantized with a scale of its
// own, each weight row with one, and cuBLASLt's outer-vector scaling applying both, so that a
// row's outliers never cost the other rows their precision. The encoder is written once against
// it: stage an input (its activation applied on the way), then multiply.
#include <optional>

#include "cuda/cuda_weights.h"
#include "cuda/gemm.h"
#include "trocr/config.h"

namespace trocr::cuda {

// An encoder layer's four products.
enum class EncoderProduct { Qkv, AttentionOutput, Intermediate, Output };

template <typename T>
class EncoderProducts {
 public:
  // A staged input, valid until the next stage(): in the engine's dtype, values (activated); in
  // E4M3, the product reads the quantized copy.
  struct Input {
    const T* values;
    int rows, width;
  };

  EncoderProducts(const DeviceWeights<T>& weights, Gemm& gemm, int64_t max_rows, int max_width);
  bool fp8() const { return fp8_; }
  // x [rows, width] as a product's input; the activation (if any) is applied first, in place in
  // the engine's dtype, or while quantizing in E4M3 (the FFN's GELU pass costs nothing extra).
  Input stage(T* x, int rows, int width, std::optional<Activation> activation = {});
  // y = x W^T + b with encoder layer `layer`'s `product`.
  void linear(const Input& x, size_t layer, EncoderProduct product, T* y);

 private:
  const DeviceWeights<T>& weights_;
  Gemm& gemm_;
  bool fp8_;
  DeviceBuffer<__nv_fp8_e4m3> staged_;
  DeviceBuffer<float> staged_scales_;
};

}  // namespace trocr::cuda

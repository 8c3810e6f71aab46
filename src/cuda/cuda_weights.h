#pragma once
// The model's weights on the device in the engine's dtype, with the projections that run
// together fused: Q, K and V of each self-attention as one matrix, and the cross-attention K
// and V of every decoder layer as one matrix (computed once per image).
#include <cuda_fp8.h>

#include <optional>
#include <vector>

#include "cuda/device_buffer.h"
#include "model/weights.h"

namespace trocr::cuda {

template <typename T>
struct DeviceLinear {
  DeviceBuffer<T> weight;  // [out, in]
  DeviceBuffer<T> bias;    // [out], empty without bias
  int out = 0, in = 0;

  const T* bias_or_null() const { return bias.empty() ? nullptr : bias.data(); }
};

struct DeviceNorm {
  DeviceBuffer<float> gamma, beta;  // fp32: LayerNorm runs in fp32
};

// A linear layer's weight [out, in] in E4M3 with a scale per output row (the "fp8" dtype's
// encoder products; the bias stays in the DeviceLinear).
struct Fp8Weight {
  DeviceBuffer<__nv_fp8_e4m3> values;
  DeviceBuffer<float> scales;
};

struct Fp8EncoderLayer {
  Fp8Weight qkv, attention_output, intermediate, output;
};

template <typename T>
struct DeviceEncoderLayer {
  DeviceNorm before, after;
  DeviceLinear<T> qkv, attention_output, intermediate, output;
};

template <typename T>
struct DeviceDecoderLayer {
  DeviceLinear<T> self_qkv, self_output, cross_query, cross_output, fc1, fc2;
  DeviceNorm self_norm, cross_norm, final_norm;
  // cross_output's bias plus W_o . b_v: with softmax weights summing to 1, the value projection's
  // bias passes through attention unchanged, so cross-attention over the encoder output
  // (CudaModel's folded path) adds it here.
  DeviceBuffer<T> cross_output_folded_bias;
};

template <typename T>
struct DeviceWeights {
  DeviceLinear<T> patch_projection;
  DeviceBuffer<T> cls_token, distillation_token, encoder_positions;
  std::vector<DeviceEncoderLayer<T>> encoder_layers;
  // The encoder layers' products in E4M3 (quantize_encoder_products); empty unless the dtype is
  // "fp8", and then the encoder multiplies in E4M3.
  std::vector<Fp8EncoderLayer> encoder_products_fp8;
  DeviceNorm encoder_norm;
  std::optional<DeviceLinear<T>> encoder_to_decoder;
  DeviceBuffer<T> embed_tokens, decoder_positions;
  DeviceNorm embedding_norm;  // empty without layernorm_embedding
  std::vector<DeviceDecoderLayer<T>> decoder_layers;
  DeviceLinear<T> cross_key_values;  // [layers * 2 * d_model, cross width]: K then V per layer
  DeviceBuffer<T> output_projection;  // [vocab, d_model]
};

template <typename T>
DeviceWeights<T> upload_weights(const ModelWeights& weights, cudaStream_t stream);

// Fills encoder_products_fp8 from the encoder layers' weights, a scale per output row.
template <typename T>
void quantize_encoder_products(DeviceWeights<T>& weights, cudaStream_t stream);

}  // namespace trocr::cuda

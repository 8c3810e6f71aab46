#include "cuda/convert_kernels.h"
#include "cuda/cuda_weights.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

template <typename T>
DeviceBuffer<T> to_device(const std::vector<float>& values, cudaStream_t stream) {
  DeviceBuffer<T> result(values.size());
  if (values.empty()) return result;
  if constexpr (std::is_same_v<T, float>) {
    result.upload(values, stream);
  } else {
    DeviceBuffer<float> staging;
    staging.upload(values, stream);
    auto* out = reinterpret_cast<uint16_t*>(result.data());
    if constexpr (std::is_same_v<T, __half>) {
      convert_float_to_half(staging.data(), out, values.size(), stream);
    } else {
      convert_float_to_bfloat16(staging.data(), out, values.size(), stream);
    }
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));  // before staging is freed
  }
  return result;
}

// b_o + W_o . b_v, in fp32 (missing biases count as zeros).
std::vector<float> folded_output_bias(const LinearWeights& output, const LinearWeights& value) {
  const int64_t out = output.out_features(), in = value.out_features();
  std::vector<float> bias(out, 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    double sum = output.bias.empty() ? 0.0 : output.bias.values[i];
    if (!value.bias.empty()) {
      for (int64_t j = 0; j < in; ++j) sum += double(output.weight.values[i * in + j]) * value.bias.values[j];
    }
    bias[i] = static_cast<float>(sum);
  }
  return bias;
}

// Row-wise concatenation of linear layers; a missing bias counts as zeros.
template <typename T>
DeviceLinear<T> fused(const std::vector<const LinearWeights*>& parts, cudaStream_t stream) {
  std::vector<float> weight, bias;
  bool any_bias = false;
  for (const LinearWeights* part : parts) any_bias = any_bias || !part->bias.empty();
  DeviceLinear<T> linear;
  linear.in = static_cast<int>(parts[0]->in_features());
  for (const LinearWeights* part : parts) {
    weight.insert(weight.end(), part->weight.values.begin(), part->weight.values.end());
    if (any_bias) {
      if (part->bias.empty()) {
        bias.insert(bias.end(), part->out_features(), 0.0f);
      } else {
        bias.insert(bias.end(), part->bias.values.begin(), part->bias.values.end());
      }
    }
    linear.out += static_cast<int>(part->out_features());
  }
  linear.weight = to_device<T>(weight, stream);
  linear.bias = to_device<T>(bias, stream);
  return linear;
}

template <typename T>
DeviceLinear<T> single(const LinearWeights& layer, cudaStream_t stream) {
  return fused<T>({&layer}, stream);
}

DeviceNorm norm(const LayerNormWeights& weights, cudaStream_t stream) {
  DeviceNorm result;
  result.gamma.upload(weights.weight.values, stream);
  result.beta.upload(weights.bias.values, stream);
  return result;
}

}  // namespace

template <typename T>
DeviceWeights<T> upload_weights(const ModelWeights& weights, cudaStream_t stream) {
  DeviceWeights<T> device;
  const EncoderWeights& encoder = weights.encoder;
  device.patch_projection = single<T>(encoder.patch_projection, stream);
  device.cls_token = to_device<T>(encoder.cls_token.values, stream);
  device.distillation_token = to_device<T>(encoder.distillation_token.values, stream);
  device.encoder_positions = to_device<T>(encoder.position_embeddings.values, stream);
  for (const EncoderLayerWeights& layer : encoder.layers) {
    DeviceEncoderLayer<T> target;
    target.before = norm(layer.layernorm_before, stream);
    target.after = norm(layer.layernorm_after, stream);
    target.qkv = fused<T>({&layer.query, &layer.key, &layer.value}, stream);
    target.attention_output = single<T>(layer.attention_output, stream);
    target.intermediate = single<T>(layer.intermediate, stream);
    target.output = single<T>(layer.output, stream);
    device.encoder_layers.push_back(std::move(target));
  }
  device.encoder_norm = norm(encoder.final_layernorm, stream);
  if (weights.encoder_to_decoder) {
    device.encoder_to_decoder = single<T>(*weights.encoder_to_decoder, stream);
  }
  const DecoderWeights& decoder = weights.decoder;
  device.embed_tokens = to_device<T>(decoder.embed_tokens.values, stream);
  device.decoder_positions = to_device<T>(decoder.embed_positions.values, stream);
  if (!decoder.layernorm_embedding.weight.empty()) {
    device.embedding_norm = norm(decoder.layernorm_embedding, stream);
  }
  std::vector<const LinearWeights*> cross_parts;
  for (const DecoderLayerWeights& layer : decoder.layers) {
    DeviceDecoderLayer<T> target;
    target.self_qkv = fused<T>({&layer.self_query, &layer.self_key, &layer.self_value}, stream);
    target.self_output = single<T>(layer.self_output, stream);
    target.cross_query = single<T>(layer.cross_query, stream);
    target.cross_output = single<T>(layer.cross_output, stream);
    target.fc1 = single<T>(layer.fc1, stream);
    target.fc2 = single<T>(layer.fc2, stream);
    target.self_norm = norm(layer.self_attention_layernorm, stream);
    target.cross_norm = norm(layer.cross_attention_layernorm, stream);
    target.final_norm = norm(layer.final_layernorm, stream);
    target.cross_output_folded_bias = to_device<T>(folded_output_bias(layer.cross_output, layer.cross_value), stream);
    device.decoder_layers.push_back(std::move(target));
    cross_parts.push_back(&layer.cross_key);
    cross_parts.push_back(&layer.cross_value);
  }
  device.cross_key_values = fused<T>(cross_parts, stream);
  device.output_projection = to_device<T>(decoder.output_projection.values, stream);
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
  return device;
}

template <typename T>
void quantize_encoder_products(DeviceWeights<T>& weights, cudaStream_t stream) {
  const auto quantized = [stream](const DeviceLinear<T>& layer) {
    Fp8Weight weight;
    weight.values.resize(size_t(layer.out) * layer.in);
    weight.scales.resize(layer.out);
    quantize_rows<T>(layer.weight.data(), layer.out, layer.in, std::nullopt, weight.values.data(),
                     weight.scales.data(), stream);
    return weight;
  };
  weights.encoder_products_fp8.clear();
  for (const DeviceEncoderLayer<T>& layer : weights.encoder_layers) {
    weights.encoder_products_fp8.push_back({quantized(layer.qkv), quantized(layer.attention_output),
                                           quantized(layer.intermediate), quantized(layer.output)});
  }
}

template DeviceWeights<float> upload_weights<float>(const ModelWeights&, cudaStream_t);
template DeviceWeights<__half> upload_weights<__half>(const ModelWeights&, cudaStream_t);
template DeviceWeights<__nv_bfloat16> upload_weights<__nv_bfloat16>(const ModelWeights&, cudaStream_t);
template void quantize_encoder_products<float>(DeviceWeights<float>&, cudaStream_t);
template void quantize_encoder_products<__half>(DeviceWeights<__half>&, cudaStream_t);
template void quantize_encoder_products<__nv_bfloat16>(DeviceWeights<__nv_bfloat16>&, cudaStream_t);

}  // namespace trocr::cuda

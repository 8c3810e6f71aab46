#include "model/encoder.h"

#include <cmath>
#include <cstring>

#include "cpu/attention.h"
#include "cpu/layer_norm.h"
#include "cpu/linear.h"

namespace trocr {
namespace {

// Rows of [channel, y, x] pixels for each patch, in the layout of the flattened conv weight.
void extract_patches(const float* image, const EncoderConfig& config, float* patches) {
  const int p = config.patch_size;
  const int rows = config.image_height / p, columns = config.image_width / p;
  const int64_t plane = int64_t{config.image_height} * config.image_width;
  for (int py = 0; py < rows; ++py) {
    for (int px = 0; px < columns; ++px) {
      float* out = patches + (int64_t{py} * columns + px) * 3 * p * p;
      for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < p; ++y) {
          const float* source = image + c * plane + int64_t{py * p + y} * config.image_width + px * p;
          std::memcpy(out + (c * p + y) * p, source, sizeof(float) * p);
        }
      }
    }
  }
}

void embed(const EncoderWeights& weights, const EncoderConfig& config, const float* image,
           float* tokens) {
  const int hidden = config.hidden_size;
  const int prefix = config.prefix_tokens();
  std::vector<float> patches(static_cast<size_t>(config.patch_count()) * 3 * config.patch_size *
                             config.patch_size);
  extract_patches(image, config, patches.data());
  cpu::linear(patches.data(), config.patch_count(), weights.patch_projection,
              tokens + int64_t{prefix} * hidden);
  std::memcpy(tokens, weights.cls_token.data(), sizeof(float) * hidden);
  if (config.type == EncoderType::Deit) {
    std::memcpy(tokens + hidden, weights.distillation_token.data(), sizeof(float) * hidden);
  }
  const float* positions = weights.position_embeddings.data();
  for (int64_t i = 0; i < int64_t{config.sequence_length()} * hidden; ++i) tokens[i] += positions[i];
}

}  // namespace

void encode_images(const EncoderWeights& weights, const EncoderConfig& config, const float* pixels, int batch,
                   float* states) {
  const int hidden = config.hidden_size;
  const int sequence = config.sequence_length();
  const int64_t rows = int64_t{batch} * sequence;
  const int64_t image_size = int64_t{3} * config.image_height * config.image_width;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < batch; ++b) {
    embed(weights, config, pixels + b * image_size, states + b * sequence * hidden);
  }
  // Workspaces kept between calls (per calling thread): allocating and zeroing ~70 MB per
  // trocr-small batch of 8 cost 18% of the encoder's time in page faults and memset.
  thread_local std::vector<float> normed, q, k, v, context, intermediate;
  for (auto* buffer : {&normed, &q, &k, &v, &context}) buffer->resize(rows * hidden);
  intermediate.resize(rows * config.intermediate_size);
  cpu::AttentionShape shape;
  shape.queries = shape.keys = sequence;
  shape.heads = config.num_heads;
  shape.head_dim = hidden / config.num_heads;
  shape.q_stride = shape.kv_stride = hidden;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  shape.sequences = batch;
  const auto residual = cpu::LinearPostOp::add_to_output();
  for (const EncoderLayerWeights& layer : weights.layers) {
    cpu::layer_norm(states, rows, hidden, layer.layernorm_before, config.layer_norm_eps,
                    normed.data());
    cpu::linear(normed.data(), rows, layer.query, q.data());
    cpu::linear(normed.data(), rows, layer.key, k.data());
    cpu::linear(normed.data(), rows, layer.value, v.data());
    cpu::attention(q.data(), k.data(), v.data(), shape, context.data());
    cpu::linear(context.data(), rows, layer.attention_output, states, residual);
    cpu::layer_norm(states, rows, hidden, layer.layernorm_after, config.layer_norm_eps,
                    normed.data());
    cpu::linear(normed.data(), rows, layer.intermediate, intermediate.data(),
                cpu::LinearPostOp::activate(config.activation));
    cpu::linear(intermediate.data(), rows, layer.output, states, residual);
  }
  cpu::layer_norm(states, rows, hidden, weights.final_layernorm, config.layer_norm_eps,
                  states);
}

std::vector<float> encode_images(const EncoderWeights& weights, const EncoderConfig& config,
                                 const float* pixels, int batch) {
  std::vector<float> states(int64_t{batch} * config.sequence_length() * config.hidden_size);
  encode_images(weights, config, pixels, batch, states.data());
  return states;
}

}  // namespace trocr

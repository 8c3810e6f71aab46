#pragma once
// The model's weights as named fp32 tensors, checked against the config at load time.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "trocr/config.h"

namespace trocr {

struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
  // A bf16 copy of a matrix-product weight when the CPU engine runs in bf16 (else empty).
  std::vector<uint16_t> bf16;

  bool empty() const { return values.empty(); }
  const float* data() const { return values.data(); }
};

struct LinearWeights {
  HostTensor weight;  // [out, in], as PyTorch's nn.Linear stores it
  HostTensor bias;    // [out], empty when the layer has none

  int64_t out_features() const { return weight.shape[0]; }
  int64_t in_features() const { return weight.shape[1]; }
  const float* bias_or_null() const { return bias.empty() ? nullptr : bias.data(); }
};

struct LayerNormWeights {
  HostTensor weight;
  HostTensor bias;
};

struct EncoderLayerWeights {
  LayerNormWeights layernorm_before;
  LinearWeights query, key, value, attention_output;
  LayerNormWeights layernorm_after;
  LinearWeights intermediate, output;
};

struct EncoderWeights {
  LinearWeights patch_projection;  // the patch convolution as [hidden, channels * patch * patch]
  HostTensor cls_token;            // [hidden]
  HostTensor distillation_token;   // [hidden], DeiT only
  HostTensor position_embeddings;  // [sequence, hidden]
  std::vector<EncoderLayerWeights> layers;
  LayerNormWeights final_layernorm;
};

struct DecoderLayerWeights {
  LinearWeights self_query, self_key, self_value, self_output;
  LayerNormWeights self_attention_layernorm;
  LinearWeights cross_query, cross_key, cross_value, cross_output;
  LayerNormWeights cross_attention_layernorm;
  LinearWeights fc1, fc2;
  LayerNormWeights final_layernorm;
};

struct DecoderWeights {
  HostTensor embed_tokens;     // [vocab, d_model]
  HostTensor embed_positions;  // [positions, d_model]: learned, or the sinusoidal table
  LayerNormWeights layernorm_embedding;  // empty without layernorm_embedding
  std::vector<DecoderLayerWeights> layers;
  HostTensor output_projection;  // [vocab, d_model]; a copy of embed_tokens when tied
};

struct ModelWeights {
  EncoderWeights encoder;
  std::optional<LinearWeights> encoder_to_decoder;
  DecoderWeights decoder;
  DType source_dtype = DType::F32;  // the checkpoint's (most common) float type
  int64_t parameter_count = 0;      // as stored, tied weights counted once
};

// Takes every tensor the config implies from the checkpoint, checking names and shapes;
// missing, misshapen and unexpected tensors are errors that name the tensor and the file.
ModelWeights load_weights(const Checkpoint& checkpoint, const ModelConfig& config);

// TrOCR's sinusoidal position table (TrOCRSinusoidalPositionalEmbedding.get_embedding).
HostTensor sinusoidal_positions(int count, int dim, int padding_idx);

}  // namespace trocr

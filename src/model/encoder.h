#pragma once
// The ViT/DeiT image encoder on the CPU: patch embedding, CLS (and DeiT's distillation)
// token, learned positions, pre-LN transformer blocks, final LayerNorm.
#include <vector>

#include "model/weights.h"

namespace trocr {

// pixels: [batch, 3, height, width] as preprocess_image makes them. Writes last_hidden_state,
// [batch, sequence_length, hidden_size], to `states`.
void encode_images(const EncoderWeights& weights, const EncoderConfig& config, const float* pixels, int batch,
                   float* states);
// The same, into a new vector.
std::vector<float> encode_images(const EncoderWeights& weights, const EncoderConfig& config,
                                 const float* pixels, int batch);

}  // namespace trocr

#pragma once
// The linear op of the encoder and the decoder step: y = activation(x W^T + b). It runs
// small_linear (one pass over the weights, for a few rows: the decode steps of small batches) or
// a cuBLASLt GEMM; callers never choose.
#include <optional>

#include "cuda/cuda_weights.h"
#include "cuda/gemm.h"
#include "trocr/config.h"

namespace trocr::cuda {

// bias_override replaces the layer's bias (the decoder's folded cross-attention output).
template <typename T>
void linear(Gemm& gemm, const T* x, int rows, const DeviceLinear<T>& layer, T* y,
            std::optional<Activation> activation = {}, const T* bias_override = nullptr);

// fp32 logits [rows, vocab] = x [rows, width] . weight [vocab, width]^T (no bias).
template <typename T>
void logits_projection(Gemm& gemm, const T* x, int rows, const T* weight, int vocab, int width, float* logits);

}  // namespace trocr::cuda

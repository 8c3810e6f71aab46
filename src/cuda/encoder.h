#pragma once
// The ViT/DeiT encoder on the GPU: patch embedding, then the pre-LN layers, over chunks of
// images. It owns its workspace, sized once for its chunk, and its attention chooses its own
// kernel (kernel_choice.h). A few images' pass is a CUDA graph: at batch 1 its ~90
// launches cost more than their work.
#include <memory>

#include "cuda/cuda_weights.h"
#include "cuda/cudnn_attention.h"
#include "cuda/encoder_products.h"
#include "cuda/gemm.h"
#include "cuda/kernel_choice.h"
#include "cuda/step_graphs.h"
#include "trocr/config.h"

namespace trocr::cuda {

template <typename T>
class CudaEncoder {
 public:
  // The encoder works through a batch in chunks of at most this many images (the chunk bounds
  // its workspace: trocr-base needs ~0.2 GB per 32 images, ~0.7 GB with the unfused attention).
  static constexpr int kMaxChunk = 32;
  // Plans for batches of up to max_images (the chunk is the smaller of the two).
  CudaEncoder(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm, int max_images);

  int chunk() const { return chunk_; }
  cudaStream_t stream() const { return gemm_.stream(); }  // where encode() enqueues
  EncoderAttentionKernel attention_kernel() const { return attention_kernel_; }
  // Builds now what encoding each batch size of up to chunk() needs (cuDNN's attention plans,
  // otherwise built at a size's first batch).
  void prepare_every_batch();
  // pixels: device [count, 3, H, W] fp32, count <= chunk(). Writes last_hidden_state
  // [count * sequence, hidden] into out.
  void encode(const float* pixels, int count, T* out);

  // Up to this many images, encode() replays a graph captured per (pixels, count, out).
  static constexpr int kMaxGraphedImages = 8;

 private:
  struct Spec;
  static void enqueue(const Spec& spec);
  void encode_eagerly(const float* pixels, int count, T* out);
  void attention(const T* qkv, int batch, T* out);

  const DeviceWeights<T>& weights_;
  const EncoderConfig& config_;
  Gemm& gemm_;
  int chunk_;
  EncoderAttentionKernel attention_kernel_;
  std::unique_ptr<CudnnAttention> cudnn_attention_;  // where the choice is cuDNN's
  EncoderProducts<T> products_;
  DeviceBuffer<T> patches_, patch_embeddings_, normed_, qkv_, heads_out_, projected_, intermediate_;
  // The unfused attention's: heads split, scores and probabilities, the per-head context.
  DeviceBuffer<T> q_, k_, v_, scores_, probabilities_, context_;
  StepGraphs graphs_;
};

}  // namespace trocr::cuda

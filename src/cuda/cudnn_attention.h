#pragma once
// cuDNN's fused attention (its SDPA forward operation, cuDNN >= 9.13) over the encoder's QKV
// product, with the contract of kernels.h's encoder_attention: qkv [B * S, 3 * heads * dim] ->
// out [B * S, heads * dim], softmax(scale * Q K^T) V per image and head. cuDNN is loaded at run
// time, so a machine without it runs our own kernel. A cuDNN plan has its batch built in: one
// plan per batch size, built outside any graph capture and kept.
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>

#include "common/dtype.h"
#include "cuda/device_buffer.h"

namespace trocr::cuda {

class CudnnAttention {
 public:
  // Whether cuDNN loads here and has the operation; why not in *why where it does not.
  static bool available(std::string* why = nullptr);

  // dtype: F16 or BF16; batches of 1..max_batch images. Throws trocr::Error where cuDNN is
  // missing or refuses the shape.
  CudnnAttention(DType dtype, int sequence, int heads, int head_dim, float scale, int max_batch);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Builds this batch's plan if there is none yet (cuDNN's heuristics and a kernel load, a few
  // ms): call it before capturing a graph that runs the batch.
  void prepare(int batch);
  // Enqueues the attention of `batch` images on stream (the batch's plan is built if needed).
  void run(const void* qkv, int batch, void* out, cudaStream_t stream);
  // cuDNN's index of the engine that runs `batch` (prepared), for the records.
  int64_t engine(int batch);

 private:
  struct Plan;
  Plan build(int batch);
  Plan& plan(int batch);  // built at its first use

  DType dtype_;
  int sequence_, heads_, head_dim_, max_batch_;
  float scale_;  // read by cuDNN at each launch (by value)
  void* handle_ = nullptr;
  std::map<int, std::unique_ptr<Plan>> plans_;
};

}  // namespace trocr::cuda

#include <algorithm>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/activation.cuh"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

constexpr int kThreads = 256;

// Vector elements at a time: 16-byte loads and stores (a 16-byte-aligned array whose length is
// a multiple of Vector), or one element (Vector 1) otherwise. The encoder's FFN activations are
// hundreds of MB per layer at large batches; single-element accesses left a third of the
// bandwidth unused.
template <typename T, int Vector>
__global__ void activation_kernel(T* values, int64_t count, Activation activation) {
  struct alignas(sizeof(T) * Vector) Piece {
    T elements[Vector];
  };
  Piece* pieces = reinterpret_cast<Piece*>(values);
  const int64_t piece_count = count / Vector;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < piece_count; i += int64_t(gridDim.x) * blockDim.x) {
    Piece piece = pieces[i];
#pragma unroll
    for (int v = 0; v < Vector; ++v) piece.elements[v] = from_float<T>(activate(to_float(piece.elements[v]), activation));
    pieces[i] = piece;
  }
}

template <typename T, int Vector>
void launch(T* values, int64_t count, Activation activation, cudaStream_t stream) {
  const int64_t pieces = count / Vector;
  const int64_t blocks = std::min<int64_t>((pieces + kThreads - 1) / kThreads, 65535);
  activation_kernel<T, Vector><<<unsigned(blocks), kThreads, 0, stream>>>(values, count, activation);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <typename T>
void apply_activation(T* values, int64_t count, Activation activation, cudaStream_t stream) {
  if (count == 0) return;
  constexpr int kVector = 16 / sizeof(T);
  if (count % kVector == 0 && reinterpret_cast<uintptr_t>(values) % 16 == 0) {
    launch<T, kVector>(values, count, activation, stream);
  } else {
    launch<T, 1>(values, count, activation, stream);
  }
}

template void apply_activation<float>(float*, int64_t, Activation, cudaStream_t);
template void apply_activation<__half>(__half*, int64_t, Activation, cudaStream_t);
template void apply_activation<__nv_bfloat16>(__nv_bfloat16*, int64_t, Activation, cudaStream_t);

}  // namespace trocr::cuda

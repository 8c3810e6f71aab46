// Data movement around the encoder's matrix products: patches, token assembly, head
// splitting for the batched attention products, and the row softmax between them.
#include "cuda/cuda_check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {
namespace {

// One block per (image, channel, pixel row): the row is read in order, and each pixel goes to its
// place in its patch (patches are [image, patch row, patch column] x [channel, y, x]). A thread
// per output element with 64-bit index arithmetic ran at an eighth of the memory bandwidth.
template <typename T>
__global__ void extract_patches_kernel(const float* pixels, int height, int width, int patch, T* patches) {
  const int row = blockIdx.x % height, channel = (blockIdx.x / height) % 3;
  const int64_t image = blockIdx.x / (3 * height);
  const int columns = width / patch, rows = height / patch;
  if (row >= rows * patch) return;  // below the last whole patch
  const int patch_size = 3 * patch * patch;
  const float* source = pixels + ((image * 3 + channel) * height + row) * int64_t(width);
  T* destination = patches + (image * rows + row / patch) * columns * int64_t(patch_size) +
                   (channel * patch + row % patch) * patch;
  for (int column = threadIdx.x; column < columns * patch; column += blockDim.x) {
    destination[int64_t(column / patch) * patch_size + column % patch] = from_float<T>(source[column]);
  }
}

// One block per token (image, position), its threads across the hidden width.
template <typename T>
__global__ void assemble_tokens_kernel(const T* patch_embeddings, const T* cls, const T* distillation,
                                       const T* positions, int patches, int hidden, T* tokens) {
  const int prefix = distillation != nullptr ? 2 : 1;
  const int sequence = patches + prefix;
  const int s = blockIdx.x % sequence;
  const int64_t image = blockIdx.x / sequence;
  const T* source = s == 0        ? cls
                    : s < prefix  ? distillation
                                  : patch_embeddings + (image * patches + s - prefix) * int64_t(hidden);
  const T* position = positions + int64_t(s) * hidden;
  T* out = tokens + int64_t(blockIdx.x) * hidden;
  for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
    out[h] = from_float<T>(to_float(source[h]) + to_float(position[h]));
  }
}

// One block per token; each thread moves 16 bytes (kVector elements), or one element where a
// head's width is not a multiple of 16 bytes. The profile of an element-wise version with
// 64-bit division per element showed it at ~460 GB/s.
template <typename T, int kVector, typename Chunk>
__global__ void split_heads_kernel(const T* qkv, int sequence, int heads, int dim, T* q, T* k, T* v) {
  const int width = heads * dim, token = blockIdx.x;
  const int b = token / sequence, s = token % sequence;
  const Chunk* source = reinterpret_cast<const Chunk*>(qkv + int64_t(token) * 3 * width);
  for (int vector = threadIdx.x; vector < 3 * width / kVector; vector += blockDim.x) {
    const int column = vector * kVector;
    const int which = column / width, h = (column % width) / dim, d = column % dim;
    T* target = which == 0 ? q : which == 1 ? k : v;
    *reinterpret_cast<Chunk*>(target + ((int64_t(b) * heads + h) * sequence + s) * dim + d) = source[vector];
  }
}

template <typename T, int kVector, typename Chunk>
__global__ void merge_heads_kernel(const T* context, int sequence, int heads, int dim, T* out) {
  const int width = heads * dim, token = blockIdx.x;
  const int b = token / sequence, s = token % sequence;
  Chunk* target = reinterpret_cast<Chunk*>(out + int64_t(token) * width);
  for (int vector = threadIdx.x; vector < width / kVector; vector += blockDim.x) {
    const int column = vector * kVector;
    const int h = column / dim, d = column % dim;
    target[vector] = *reinterpret_cast<const Chunk*>(context + ((int64_t(b) * heads + h) * sequence + s) * dim + d);
  }
}

// One block per row; the row is read once into registers.
constexpr int kSoftmaxThreads = 256;
constexpr int kSoftmaxPerThread = 8;  // rows of up to 2048 columns

template <typename T>
__global__ void softmax_rows_kernel(const T* scores, int columns, int64_t stride, T* probabilities) {
  __shared__ float reduce[kSoftmaxThreads / 32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * stride;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float values[kSoftmaxPerThread];
  float largest = -INFINITY;
#pragma unroll
  for (int i = 0; i < kSoftmaxPerThread; ++i) {
    const int j = threadIdx.x + i * kSoftmaxThreads;
    values[i] = j < columns ? to_float(scores[offset + j]) : -INFINITY;
    largest = fmaxf(largest, values[i]);
  }
  for (int o = 16; o > 0; o /= 2) largest = fmaxf(largest, __shfl_xor_sync(0xffffffff, largest, o));
  if (lane == 0) reduce[warp] = largest;
  __syncthreads();
  largest = reduce[0];
  for (int w = 1; w < kSoftmaxThreads / 32; ++w) largest = fmaxf(largest, reduce[w]);
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int i = 0; i < kSoftmaxPerThread; ++i) {
    values[i] = __expf(values[i] - largest);
    total += values[i];
  }
  for (int o = 16; o > 0; o /= 2) total += __shfl_xor_sync(0xffffffff, total, o);
  if (lane == 0) reduce[warp] = total;
  __syncthreads();
  total = 0.0f;
  for (int w = 0; w < kSoftmaxThreads / 32; ++w) total += reduce[w];
  const float inverse = 1.0f / total;
#pragma unroll
  for (int i = 0; i < kSoftmaxPerThread; ++i) {
    const int j = threadIdx.x + i * kSoftmaxThreads;
    if (j < columns) probabilities[offset + j] = from_float<T>(values[i] * inverse);
  }
}

}  // namespace

template <typename T>
void extract_patches(const float* pixels, int batch, int height, int width, int patch, T* patches,
                     cudaStream_t stream) {
  if (batch == 0) return;
  extract_patches_kernel<T><<<unsigned(batch) * 3 * height, 128, 0, stream>>>(pixels, height, width, patch, patches);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void assemble_tokens(const T* patch_embeddings, const T* cls, const T* distillation,
                     const T* positions, int batch, int patches, int hidden, T* tokens,
                     cudaStream_t stream) {
  if (batch == 0) return;
  const unsigned sequence = patches + (distillation != nullptr ? 2 : 1);
  assemble_tokens_kernel<T><<<unsigned(batch) * sequence, 256, 0, stream>>>(patch_embeddings, cls, distillation,
                                                                             positions, patches, hidden, tokens);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void split_heads(const T* qkv, int batch, int sequence, int heads, int dim, T* q, T* k, T* v,
                 cudaStream_t stream) {
  if ((dim * sizeof(T)) % 16 == 0) {
    split_heads_kernel<T, 16 / sizeof(T), uint4><<<batch * sequence, 256, 0, stream>>>(qkv, sequence, heads, dim, q, k, v);
  } else {
    split_heads_kernel<T, 1, T><<<batch * sequence, 256, 0, stream>>>(qkv, sequence, heads, dim, q, k, v);
  }
  TROCR_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void merge_heads(const T* context, int batch, int sequence, int heads, int dim, T* out,
                 cudaStream_t stream) {
  if ((dim * sizeof(T)) % 16 == 0) {
    merge_heads_kernel<T, 16 / sizeof(T), uint4><<<batch * sequence, 128, 0, stream>>>(context, sequence, heads, dim, out);
  } else {
    merge_heads_kernel<T, 1, T><<<batch * sequence, 128, 0, stream>>>(context, sequence, heads, dim, out);
  }
  TROCR_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void softmax_rows(const T* scores, int64_t rows, int columns, int64_t stride, T* probabilities,
                  cudaStream_t stream) {
  if (rows == 0) return;
  if (columns > kSoftmaxThreads * kSoftmaxPerThread) fail("softmax: {} columns > {}", columns, kSoftmaxThreads * kSoftmaxPerThread);
  softmax_rows_kernel<T><<<static_cast<unsigned>(rows), kSoftmaxThreads, 0, stream>>>(scores, columns, stride, probabilities);
  TROCR_CUDA_CHECK(cudaGetLastError());
}

#define INSTANTIATE(T)                                                                          \
  template void extract_patches<T>(const float*, int, int, int, int, T*, cudaStream_t);        \
  template void assemble_tokens<T>(const T*, const T*, const T*, const T*, int, int, int, T*,   \
                                   cudaStream_t);                                               \
  template void split_heads<T>(const T*, int, int, int, int, T*, T*, T*, cudaStream_t);         \
  template void merge_heads<T>(const T*, int, int, int, int, T*, cudaStream_t);                 \
  template void softmax_rows<T>(const T*, int64_t, int, int64_t, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(__half)
INSTANTIATE(__nv_bfloat16)
#undef INSTANTIATE

}  // namespace trocr::cuda

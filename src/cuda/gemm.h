#pragma once
// Row-major matrix products through cuBLASLt, fp32 accumulation, with plans (descriptors and
// the chosen algorithm) cached per shape so that the decode loop only launches.
#include <cublasLt.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "cuda/device_buffer.h"

namespace trocr::cuda {

enum class Epilogue { None, Bias, ReluBias, GeluTanhBias };

struct MatmulShape {
  int64_t m = 0, n = 0, k = 0;
  bool b_transposed = true;  // B stored [n, k] (nn.Linear weights, K in Q.K^T); else [k, n]
  int64_t lda = 0;           // row stride of A; 0 means k
  int64_t ldc = 0;           // row stride of C; 0 means n
  int batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements between batch items
  float alpha = 1.0f;

  // A linear layer's product, C[m, n] = A[m, k] . B[n, k]^T, everything else at its default.
  static MatmulShape linear(int64_t m, int64_t n, int64_t k) {
    MatmulShape shape;
    shape.m = m;
    shape.n = n;
    shape.k = k;
    return shape;
  }
};

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // C[m, n] = alpha * A[m, k] . op(B) (+ bias[n], then the epilogue's activation).
  // A and B are TIn; C and bias are TOut.
  template <typename TIn, typename TOut>
  void matmul(const MatmulShape& shape, const TIn* a, const TIn* b, TOut* c,
              const TOut* bias = nullptr, Epilogue epilogue = Epilogue::None);
  // The "fp8" dtype's product: C[m, n] = a_scales[m] * b_scales[n] * (A[m, k] . B[n, k]^T) + bias[n],
  // A and B E4M3 with a scale per row (cuBLASLt's outer-vector scaling; Hopper or newer).
  template <typename TOut>
  void matmul_row_scaled(const MatmulShape& shape, const __nv_fp8_e4m3* a, const float* a_scales,
                         const __nv_fp8_e4m3* b, const float* b_scales, TOut* c, const TOut* bias);
  cudaStream_t stream() const { return stream_; }

 private:
  struct Plan {
    cublasLtMatmulDesc_t operation = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algorithm{};
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, int64_t, int64_t, int, int64_t, int64_t,
                         int64_t, int, int, int, bool>;
  // E4M3 products' scale vectors: our A's (per row of A) and our B's.
  struct RowScales {
    const float* a;
    const float* b;
  };
  // The plan for a product, with this call's bias and scale pointers set before cuBLASLt's
  // heuristic sees it (it refuses outer-vector scaling without them: status 7).
  Plan& plan(const MatmulShape& shape, cudaDataType_t in, cudaDataType_t out, Epilogue epilogue, const void* bias,
             const RowScales* scales = nullptr);
  void set_pointers(Plan& plan, const void* bias, const RowScales* scales);
  void run(const Plan& plan, float alpha, const void* a, const void* b, void* c);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer<char> workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace trocr::cuda

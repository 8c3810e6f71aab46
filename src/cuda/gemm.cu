#include "cuda/gemm.h"

#include "cuda/dtype_traits.h"

#define TROCR_CUBLAS_CHECK(call)                                                        \
  do {                                                                                  \
    const cublasStatus_t trocr_status_ = (call);                                        \
    if (trocr_status_ != CUBLAS_STATUS_SUCCESS) {                                       \
      ::trocr::fail("cuBLASLt error {} in {} at {}:{}", static_cast<int>(trocr_status_), #call, \
                    __FILE__, __LINE__);                                                \
    }                                                                                   \
  } while (0)

namespace trocr::cuda {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;

void set_batch(cublasLtMatrixLayout_t layout, int batch, int64_t stride) {
  if (batch <= 1) return;
  TROCR_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                      &batch, sizeof batch));
  TROCR_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
      layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
}

}  // namespace

Gemm::Gemm(cudaStream_t stream) : stream_(stream), workspace_(kWorkspaceBytes) {
  TROCR_CUBLAS_CHECK(cublasLtCreate(&handle_));
}

Gemm::~Gemm() {
  for (auto& [key, plan] : plans_) {
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    cublasLtMatmulDescDestroy(plan.operation);
  }
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

// Row-major C[m, n] = A[m, k] . op(B) is column-major C^T[n, m] = op(B)^T . A^T, so cuBLASLt's
// first operand is our B and its second our A; the bias runs along cuBLASLt's rows (our n). E4M3
// operands get a scale vector each: cuBLASLt's first (our B's rows, n) and second (our A's, m).
Gemm::Plan& Gemm::plan(const MatmulShape& shape, cudaDataType_t in, cudaDataType_t out, Epilogue epilogue,
                       const void* bias, const RowScales* scales) {
  const bool has_bias = bias != nullptr;
  const Key key{shape.m, shape.n, shape.k, shape.b_transposed, shape.lda, shape.ldc, shape.batch,
                shape.stride_a, shape.stride_b, shape.stride_c, static_cast<int>(in),
                static_cast<int>(out), static_cast<int>(epilogue), has_bias};
  if ((in == CUDA_R_8F_E4M3) != (scales != nullptr)) fail("cuBLASLt: E4M3 products, and only they, take row scales");
  auto found = plans_.find(key);
  if (found != plans_.end()) {
    set_pointers(found->second, bias, scales);
    return found->second;
  }
  Plan plan;
  TROCR_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose_first = shape.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t keep = CUBLAS_OP_N;
  TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA,
                                                    &transpose_first, sizeof transpose_first));
  TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB,
                                                    &keep, sizeof keep));
  if (scales != nullptr) {
    const cublasLtMatmulMatrixScale_t per_row = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    for (auto mode : {CUBLASLT_MATMUL_DESC_A_SCALE_MODE, CUBLASLT_MATMUL_DESC_B_SCALE_MODE}) {
      TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, mode, &per_row, sizeof per_row));
    }
  }
  cublasLtEpilogue_t mode = CUBLASLT_EPILOGUE_DEFAULT;
  if (has_bias) {
    mode = epilogue == Epilogue::ReluBias       ? CUBLASLT_EPILOGUE_RELU_BIAS
           : epilogue == Epilogue::GeluTanhBias ? CUBLASLT_EPILOGUE_GELU_BIAS
                                                : CUBLASLT_EPILOGUE_BIAS;
  } else if (epilogue == Epilogue::ReluBias) {
    mode = CUBLASLT_EPILOGUE_RELU;
  } else if (epilogue == Epilogue::GeluTanhBias) {
    mode = CUBLASLT_EPILOGUE_GELU;
  }
  TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                    &mode, sizeof mode));
  if (has_bias) {
    TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        plan.operation, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &out, sizeof out));
  }
  set_pointers(plan, bias, scales);
  const int64_t ldc = shape.ldc ? shape.ldc : shape.n;
  if (shape.b_transposed) {
    TROCR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, in, shape.k, shape.n, shape.k));
  } else {
    TROCR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, in, shape.n, shape.k, shape.n));
  }
  TROCR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, in, shape.k, shape.m, shape.lda ? shape.lda : shape.k));
  TROCR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, out, shape.n, shape.m, ldc));
  set_batch(plan.a, shape.batch, shape.stride_b);
  set_batch(plan.b, shape.batch, shape.stride_a);
  set_batch(plan.c, shape.batch, shape.stride_c);

  cublasLtMatmulPreference_t preference;
  TROCR_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspace = kWorkspaceBytes;
  TROCR_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace));
  cublasLtMatmulHeuristicResult_t result{};
  int found_count = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan.operation, plan.a, plan.b, plan.c,
                                                               plan.c, preference, 1, &result, &found_count);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || found_count == 0) {
    fail("cuBLASLt has no algorithm for a {}x{}x{} product of {} into {} (status {})", shape.m, shape.n, shape.k,
         in == CUDA_R_8F_E4M3 ? "E4M3 with row scales" : "16/32-bit floats", static_cast<int>(out),
         static_cast<int>(status));
  }
  plan.algorithm = result.algo;
  return plans_.emplace(key, plan).first->second;
}

// cuBLASLt's first operand is our B: its scales are our B's.
void Gemm::set_pointers(Plan& plan, const void* bias, const RowScales* scales) {
  if (bias != nullptr) {
    TROCR_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  }
  if (scales != nullptr) {
    TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                      &scales->b, sizeof scales->b));
    TROCR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                      &scales->a, sizeof scales->a));
  }
}

// a and b are ours (row-major); cuBLASLt takes them in the other order.
void Gemm::run(const Plan& plan, float alpha, const void* a, const void* b, void* c) {
  const float beta = 0.0f;
  TROCR_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.operation, &alpha, b, plan.a, a, plan.b, &beta, c, plan.c, c,
                                    plan.c, &plan.algorithm, workspace_.data(), workspace_.size(), stream_));
}

template <typename TIn, typename TOut>
void Gemm::matmul(const MatmulShape& shape, const TIn* a, const TIn* b, TOut* c, const TOut* bias,
                  Epilogue epilogue) {
  if (shape.m == 0) return;
  Plan& chosen = plan(shape, DataType<TIn>::value, DataType<TOut>::value, epilogue, bias);
  run(chosen, shape.alpha, a, b, c);
}

template <typename TOut>
void Gemm::matmul_row_scaled(const MatmulShape& shape, const __nv_fp8_e4m3* a, const float* a_scales,
                             const __nv_fp8_e4m3* b, const float* b_scales, TOut* c, const TOut* bias) {
  if (shape.m == 0) return;
  if (!shape.b_transposed || shape.batch != 1) fail("E4M3 products take B as [n, k] and no batch");
  const RowScales scales{a_scales, b_scales};
  Plan& chosen = plan(shape, CUDA_R_8F_E4M3, DataType<TOut>::value, Epilogue::Bias, bias, &scales);
  run(chosen, 1.0f, a, b, c);
}

template void Gemm::matmul<float, float>(const MatmulShape&, const float*, const float*, float*,
                                         const float*, Epilogue);
template void Gemm::matmul<__half, __half>(const MatmulShape&, const __half*, const __half*,
                                           __half*, const __half*, Epilogue);
template void Gemm::matmul<__half, float>(const MatmulShape&, const __half*, const __half*, float*,
                                          const float*, Epilogue);
template void Gemm::matmul<__nv_bfloat16, __nv_bfloat16>(const MatmulShape&, const __nv_bfloat16*,
                                                         const __nv_bfloat16*, __nv_bfloat16*,
                                                         const __nv_bfloat16*, Epilogue);
template void Gemm::matmul<__nv_bfloat16, float>(const MatmulShape&, const __nv_bfloat16*,
                                                 const __nv_bfloat16*, float*, const float*,
                                                 Epilogue);

template void Gemm::matmul_row_scaled<float>(const MatmulShape&, const __nv_fp8_e4m3*, const float*,
                                             const __nv_fp8_e4m3*, const float*, float*, const float*);
template void Gemm::matmul_row_scaled<__half>(const MatmulShape&, const __nv_fp8_e4m3*, const float*,
                                              const __nv_fp8_e4m3*, const float*, __half*, const __half*);
template void Gemm::matmul_row_scaled<__nv_bfloat16>(const MatmulShape&, const __nv_fp8_e4m3*, const float*,
                                                     const __nv_fp8_e4m3*, const float*, __nv_bfloat16*,
                                                     const __nv_bfloat16*);

}  // namespace trocr::cuda

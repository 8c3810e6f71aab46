// Which E4M3 products cuBLASLt offers on this GPU, and what they take: for the trocr-base
// encoder's QKV shape at a chunk of 32 images, every pairing of scale modes (per tensor, per row
// ("outer vector"), per 128-element block and 128x128 tile) with output types and the bias
// epilogue: the heuristic's status, then the median of 20 timed runs (CUDA events) where it has an
// algorithm. fp16 and bf16 products of the same shape are timed beside them.
// Usage: fp8_gemm_probe [rows n k]
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

const char* mode_name(int mode) {
  static const char* names[] = {"scalar", "vec16_ue4m3", "vec32_ue8m0", "outer_vec", "vec128", "blk128x128"};
  return mode >= 0 && mode < 6 ? names[mode] : "?";
}
const char* type_name(cudaDataType_t type) {
  return type == CUDA_R_16F ? "fp16" : type == CUDA_R_16BF ? "bf16" : type == CUDA_R_32F ? "fp32" : "e4m3";
}

void check(cudaError_t status) {
  if (status != cudaSuccess) {
    std::printf("CUDA error %s\n", cudaGetErrorString(status));
    std::exit(1);
  }
}

// Weights are cuBLASLt's A (k x n, transposed), tokens its B (k x rows), D is n x rows.
void probe(cublasLtHandle_t handle, cudaDataType_t in, int weight_mode, int token_mode, cudaDataType_t out, bool bias,
           long rows, long n, long k, void* a, void* b, void* d, void* bias_data, float* scales, void* workspace,
           size_t workspace_size) {
  cublasLtMatmulDesc_t operation;
  cublasLtMatmulDescCreate(&operation, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t t = CUBLAS_OP_T, keep = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
  cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep);
  if (in == CUDA_R_8F_E4M3) {
    const cublasLtMatmulMatrixScale_t wm = cublasLtMatmulMatrixScale_t(weight_mode),
                                      tm = cublasLtMatmulMatrixScale_t(token_mode);
    cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &wm, sizeof wm);
    cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &tm, sizeof tm);
    cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scales, sizeof scales);
    cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scales, sizeof scales);
  }
  const cublasLtEpilogue_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
  if (bias) {
    cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &out, sizeof out);
    cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_data, sizeof bias_data);
  }
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatrixLayoutCreate(&la, in, k, n, k);
  cublasLtMatrixLayoutCreate(&lb, in, k, rows, k);
  cublasLtMatrixLayoutCreate(&lc, out, n, rows, n);
  cublasLtMatmulPreference_t preference;
  cublasLtMatmulPreferenceCreate(&preference);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_size,
                                       sizeof workspace_size);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle, operation, la, lb, lc, lc, preference, 1, &result, &found);
  std::printf("%-5s weights %-11s tokens %-11s -> %s%s: ", type_name(in), in == CUDA_R_8F_E4M3 ? mode_name(weight_mode) : "-",
              in == CUDA_R_8F_E4M3 ? mode_name(token_mode) : "-", type_name(out), bias ? " +bias" : "");
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    std::printf("no algorithm (status %d)\n", int(status));
  } else {
    const float alpha = 1.0f, beta = 0.0f;
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<float> times;
    cublasStatus_t run = CUBLAS_STATUS_SUCCESS;
    for (int i = 0; i < 25 && run == CUBLAS_STATUS_SUCCESS; ++i) {
      cudaEventRecord(start);
      run = cublasLtMatmul(handle, operation, &alpha, a, la, b, lb, &beta, d, lc, d, lc, &result.algo, workspace,
                           workspace_size, nullptr);
      cudaEventRecord(stop);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      if (i >= 5) times.push_back(ms);
    }
    if (run != CUBLAS_STATUS_SUCCESS) {
      std::printf("run failed (status %d)\n", int(run));
    } else {
      std::sort(times.begin(), times.end());
      const double ms = times[times.size() / 2];
      std::printf("%.4f ms, %.0f TFLOP/s\n", ms, 2.0 * rows * n * k / ms / 1e9);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  cublasLtMatmulPreferenceDestroy(preference);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(operation);
}

}  // namespace

int main(int argc, char** argv) {
  const long rows = argc > 3 ? std::atol(argv[1]) : 18464, n = argc > 3 ? std::atol(argv[2]) : 2304,
             k = argc > 3 ? std::atol(argv[3]) : 768;
  cublasLtHandle_t handle;
  cublasLtCreate(&handle);
  void *a, *b, *d, *bias, *workspace;
  float* scales;
  const size_t workspace_size = 32u << 20;
  check(cudaMalloc(&a, n * k * 2));
  check(cudaMalloc(&b, rows * k * 2));
  check(cudaMalloc(&d, rows * n * 4));
  check(cudaMalloc(&bias, n * 4));
  check(cudaMalloc(&workspace, workspace_size));
  const size_t scale_count = (rows + n) * (k / 16 + 1);
  check(cudaMalloc(&scales, scale_count * 4));
  std::vector<float> ones(scale_count, 1.0f);
  check(cudaMemcpy(scales, ones.data(), scale_count * 4, cudaMemcpyHostToDevice));
  check(cudaMemset(a, 0x30, n * k * 2));
  check(cudaMemset(b, 0x30, rows * k * 2));
  check(cudaMemset(bias, 0, n * 4));
  std::printf("rows %ld n %ld k %ld\n", rows, n, k);
  for (cudaDataType_t in : {CUDA_R_16F, CUDA_R_16BF}) {
    probe(handle, in, 0, 0, in, true, rows, n, k, a, b, d, bias, scales, workspace, workspace_size);
  }
  const int pairs[][2] = {{0, 0}, {3, 3}, {5, 4}, {4, 4}};
  for (const auto& pair : pairs) {
    for (cudaDataType_t out : {CUDA_R_16F, CUDA_R_16BF, CUDA_R_32F}) {
      for (bool with_bias : {false, true}) {
        probe(handle, CUDA_R_8F_E4M3, pair[0], pair[1], out, with_bias, rows, n, k, a, b, d, bias, scales, workspace,
              workspace_size);
      }
    }
  }
  return 0;
}

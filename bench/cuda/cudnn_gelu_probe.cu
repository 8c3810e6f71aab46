// The FFN's first product with its erf GELU, three ways, on trocr-base's shape for 32 images
// (18464 x 3072 x 768, fp16): cuBLASLt with its bias epilogue and then our GELU pass (the
// engine today), cuBLASLt's bias+GELU epilogue (the tanh approximation: what a fused epilogue
// costs, not HF's function), and cuDNN's graph of matmul, bias add and erf GELU fused by its
// runtime-compiled engines (every engine configuration its heuristics offer, each timed). CUDA
// events, medians of 20 after warm-up; the largest difference from today's output.
// Usage: cudnn_gelu_probe [rows columns depth]
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/median_time.h"
#include "cuda/cudnn_backend.h"
#include "cuda/device_buffer.h"
#include "cuda/gemm.h"
#include "cuda/kernels/kernels.h"

using namespace trocr;
using namespace trocr::cuda;

namespace {

double largest_difference(const DeviceBuffer<__half>& a, const DeviceBuffer<__half>& b) {
  const std::vector<__half> x = a.download(), y = b.download();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, double(std::abs(__half2float(x[i]) - __half2float(y[i]))));
  }
  return worst;
}

enum Uid : int64_t { kInput = 1, kWeight, kBias, kOutput, kProduct, kBiased };

// The graph's tensors: [1, rows, columns] views; virtual ones live only inside the fused kernel.
std::unique_ptr<CudnnDescriptor> tensor(Uid uid, cudnnDataType_t type, std::array<int64_t, 3> dims,
                                        std::array<int64_t, 3> strides, bool is_virtual) {
  auto descriptor = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t id = uid, alignment = 16;
  descriptor->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type);
  descriptor->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims.data(), 3);
  descriptor->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides.data(), 3);
  descriptor->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &id);
  descriptor->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment);
  descriptor->set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, &is_virtual);
  check_cudnn(descriptor->finalize(), "finalizing a tensor");
  return descriptor;
}

std::unique_ptr<CudnnDescriptor> pointwise_mode(cudnnPointwiseMode_t mode) {
  auto descriptor = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  descriptor->set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, &mode);
  descriptor->set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &precision);
  check_cudnn(descriptor->finalize(), "finalizing a pointwise mode");
  return descriptor;
}

void probe(int64_t rows, int64_t columns, int64_t depth) {
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto filled = [&](size_t count, float scale) {
    std::vector<__half> host(count);
    for (__half& value : host) value = __float2half_rn(scale * normal(random));
    DeviceBuffer<__half> buffer;
    buffer.upload(host);
    return buffer;
  };
  DeviceBuffer<__half> input = filled(size_t(rows) * depth, 1.0f), weight = filled(size_t(columns) * depth, 0.036f),
                       bias = filled(size_t(columns), 0.1f);
  DeviceBuffer<__half> today(size_t(rows) * columns), tanh_fused(today.size()), fused(today.size());
  Gemm gemm(stream);
  const MatmulShape shape = MatmulShape::linear(rows, columns, depth);
  const double flops = 2.0 * rows * columns * depth;
  auto run_today = [&] {
    gemm.matmul<__half, __half>(shape, input.data(), weight.data(), today.data(), bias.data(), Epilogue::Bias);
    apply_activation<__half>(today.data(), rows * columns, Activation::Gelu, stream);
  };
  auto run_gemm_alone = [&] {
    gemm.matmul<__half, __half>(shape, input.data(), weight.data(), today.data(), bias.data(), Epilogue::Bias);
  };
  auto run_tanh_epilogue = [&] {
    gemm.matmul<__half, __half>(shape, input.data(), weight.data(), tanh_fused.data(), bias.data(),
                                Epilogue::GeluTanhBias);
  };
  const float gemm_ms = median_ms(run_gemm_alone, stream, 3, 20);
  const float today_ms = median_ms(run_today, stream, 3, 20);
  const float tanh_ms = median_ms(run_tanh_epilogue, stream, 3, 20);
  run_today();
  run_tanh_epilogue();
  cudaStreamSynchronize(stream);
  std::printf("%lld x %lld x %lld fp16: cuBLASLt bias %.4f ms (%.0f TFLOP/s); + our erf GELU pass %.4f ms; "
              "cuBLASLt bias+GELU(tanh) epilogue %.4f ms (|tanh - erf| max %.2e)\n",
              (long long)rows, (long long)columns, (long long)depth, gemm_ms, flops / gemm_ms * 1e-9, today_ms,
              tanh_ms, largest_difference(today, tanh_fused));

  cudnnHandle_t handle;
  check_cudnn(cudnn().create(&handle), "creating a handle");
  check_cudnn(cudnn().set_stream(handle, stream), "setting the stream");
  std::vector<std::unique_ptr<CudnnDescriptor>> keep;
  auto kept = [&](std::unique_ptr<CudnnDescriptor> descriptor) -> CudnnDescriptor& {
    keep.push_back(std::move(descriptor));
    return *keep.back();
  };
  CudnnDescriptor& a = kept(tensor(kInput, CUDNN_DATA_HALF, {1, rows, depth}, {rows * depth, depth, 1}, false));
  // The weight [columns, depth] row-major is B [depth, columns] column-major.
  CudnnDescriptor& b = kept(tensor(kWeight, CUDNN_DATA_HALF, {1, depth, columns}, {depth * columns, 1, depth}, false));
  const std::array<int64_t, 3> result_dims = {1, rows, columns}, result_strides = {rows * columns, columns, 1};
  CudnnDescriptor& product = kept(tensor(kProduct, CUDNN_DATA_FLOAT, result_dims, result_strides, true));
  CudnnDescriptor& bias_tensor = kept(tensor(kBias, CUDNN_DATA_HALF, {1, 1, columns}, {columns, columns, 1}, false));
  CudnnDescriptor& biased = kept(tensor(kBiased, CUDNN_DATA_FLOAT, result_dims, result_strides, true));
  CudnnDescriptor& out = kept(tensor(kOutput, CUDNN_DATA_HALF, result_dims, result_strides, false));

  CudnnDescriptor& matmul_mode = kept(std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_MATMUL_DESCRIPTOR));
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  matmul_mode.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute);
  check_cudnn(matmul_mode.finalize(), "finalizing the matmul mode");
  CudnnDescriptor& matmul = kept(std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR));
  matmul.set(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a);
  matmul.set(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b);
  matmul.set(CUDNN_ATTR_OPERATION_MATMUL_CDESC, product);
  matmul.set(CUDNN_ATTR_OPERATION_MATMUL_DESC, matmul_mode);
  check_cudnn(matmul.finalize(), "finalizing the matmul");
  // y = mode(x[, b]), its mode descriptor kept beside it.
  auto pointwise = [&](cudnnPointwiseMode_t mode, const CudnnDescriptor& x, const CudnnDescriptor* b,
                       const CudnnDescriptor& y) -> CudnnDescriptor& {
    CudnnDescriptor& described = kept(pointwise_mode(mode));
    CudnnDescriptor& operation = kept(std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
    operation.set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, described);
    operation.set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b != nullptr) operation.set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
    operation.set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    check_cudnn(operation.finalize(), "finalizing a pointwise operation");
    return operation;
  };
  CudnnDescriptor& add = pointwise(CUDNN_POINTWISE_ADD, product, &bias_tensor, biased);
  CudnnDescriptor& gelu = pointwise(CUDNN_POINTWISE_GELU_FWD, biased, nullptr, out);

  CudnnDescriptor& graph = kept(std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
  const std::array<cudnnBackendDescriptor_t, 3> operations = {matmul.get(), add.get(), gelu.get()};
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &handle);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, operations.data(), 3);
  check_cudnn(graph.finalize(), "finalizing the graph");

  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    CudnnDescriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
    if (heuristics.finalize() != CUDNN_STATUS_SUCCESS) {
      std::printf("cuDNN heuristics mode %d: not finalized\n", int(mode));
      continue;
    }
    int64_t count = 0;
    cudnn().get_attribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                          nullptr);
    std::vector<std::unique_ptr<CudnnDescriptor>> configs;
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      configs.push_back(std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(configs.back()->get());
    }
    cudnn().get_attribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                          &count, raw.data());
    std::printf("cuDNN heuristics mode %d: %lld engine configurations\n", int(mode), (long long)count);
    for (int64_t i = 0; i < count && i < 4; ++i) {
      CudnnDescriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &handle);
      plan.set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &raw[i]);
      const auto started = std::chrono::steady_clock::now();
      const cudnnStatus_t built = plan.finalize();
      const double build_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      if (built != CUDNN_STATUS_SUCCESS) {
        std::array<char, 512> detail{};
        cudnn().last_error(detail.data(), detail.size());
        std::printf("  configuration %lld: no plan (%s: %s)\n", (long long)i, cudnn().error_string(built),
                    detail.data());
        continue;
      }
      int64_t bytes = 0, returned = 0;
      cudnn().get_attribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &returned,
                            &bytes);
      DeviceBuffer<char> workspace(size_t(std::max<int64_t>(bytes, 1)));
      std::array<void*, 4> pointers = {input.data(), weight.data(), bias.data(), fused.data()};
      const std::array<int64_t, 4> uids = {kInput, kWeight, kBias, kOutput};
      void* workspace_pointer = workspace.data();
      CudnnDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
      pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(), 4);
      pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.data(), 4);
      pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace_pointer);
      check_cudnn(pack.finalize(), "finalizing the variant pack");
      const cudnnStatus_t ran = cudnn().execute(handle, plan.get(), pack.get());
      cudaStreamSynchronize(stream);
      if (ran != CUDNN_STATUS_SUCCESS) {
        std::printf("  configuration %lld: did not run (%s)\n", (long long)i, cudnn().error_string(ran));
        continue;
      }
      const float fused_ms = median_ms([&] { cudnn().execute(handle, plan.get(), pack.get()); }, stream, 3, 20);
      std::printf("  configuration %lld: built in %.0f ms, workspace %lld bytes, %.4f ms (%.0f TFLOP/s), against "
                  "today's %.4f: %.3f; |cuDNN - today| max %.2e\n",
                  (long long)i, build_ms, (long long)bytes, fused_ms, flops / fused_ms * 1e-9, today_ms,
                  fused_ms / today_ms, largest_difference(today, fused));
    }
  }
  cudnn().destroy(handle);
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  if (!cudnn().loaded) {
    std::printf("cuDNN unavailable: %s\n", cudnn().why_not.c_str());
    return 1;
  }
  const int64_t rows = argc > 3 ? std::stoll(argv[1]) : 18464, columns = argc > 3 ? std::stoll(argv[2]) : 3072,
                depth = argc > 3 ? std::stoll(argv[3]) : 768;
  try {
    probe(rows, columns, depth);
  } catch (const std::exception& error) {
    std::printf("error: %s\n", error.what());
    return 1;
  }
  return 0;
}

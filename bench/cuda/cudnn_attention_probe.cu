// cuDNN's fused attention (CudnnAttention) against our encoder_attention kernel on the ViT
// encoder's shape (577 tokens, 12 heads of 64): the plans' build time and engines, the largest
// difference between the two outputs, a graph-captured replay, and each one's median time
// (CUDA events, after warm-up). Usage: cudnn_attention_probe [sequence heads]
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/median_time.h"
#include "cuda/cudnn_attention.h"
#include "cuda/device_buffer.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

using namespace trocr;
using namespace trocr::cuda;

namespace {

float widen(__half x) { return __half2float(x); }
float widen(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> T narrow(float x);
template <> __half narrow<__half>(float x) { return __float2half_rn(x); }
template <> __nv_bfloat16 narrow<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T>
std::vector<float> to_float(const DeviceBuffer<T>& buffer) {
  std::vector<T> host = buffer.download();
  std::vector<float> out(host.size());
  for (size_t i = 0; i < host.size(); ++i) out[i] = widen(host[i]);
  return out;
}

template <typename T>
void probe(int sequence, int heads) {
  const int dim = 64, max_batch = 32;
  const float scale = 0.125f;
  const char* name = DataType<T>::dtype == DType::F16 ? "fp16" : "bf16";
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  const size_t rows = size_t(max_batch) * sequence;
  std::vector<T> host(rows * 3 * heads * dim);
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (T& value : host) value = narrow<T>(normal(random));
  DeviceBuffer<T> qkv, ours(rows * heads * dim), theirs(rows * heads * dim), replayed(rows * heads * dim);
  qkv.upload(host);
  auto started = std::chrono::steady_clock::now();
  CudnnAttention attention(DataType<T>::dtype, sequence, heads, dim, scale, max_batch);
  const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s: the first plan (batch %d, with the handle) built in %.1f ms\n", name, max_batch, first_ms);
  for (int batch : {1, 2, 4, 8, 16, 24, 32}) {
    started = std::chrono::steady_clock::now();
    attention.prepare(batch);
    const double build_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    encoder_attention<T>(qkv.data(), batch, sequence, heads, dim, scale, ours.data(), stream);
    attention.run(qkv.data(), batch, theirs.data(), stream);
    // The same launch captured in a graph and replayed (the encoder captures passes of <= 8 images).
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    attention.run(qkv.data(), batch, replayed.data(), stream);
    cudaStreamEndCapture(stream, &graph);
    cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphLaunch(exec, stream);
    cudaStreamSynchronize(stream);
    const std::vector<float> a = to_float(ours), b = to_float(theirs), c = to_float(replayed);
    const size_t count = size_t(batch) * sequence * heads * dim;
    double worst = 0, worst_replay = 0, sum = 0;
    for (size_t i = 0; i < count; ++i) {
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
      worst_replay = std::max(worst_replay, double(std::abs(b[i] - c[i])));
      sum += std::abs(a[i] - b[i]);
    }
    const float ours_ms = median_ms(
        [&] { encoder_attention<T>(qkv.data(), batch, sequence, heads, dim, scale, ours.data(), stream); }, stream,
        5, 30);
    const float theirs_ms = median_ms([&] { attention.run(qkv.data(), batch, theirs.data(), stream); }, stream, 5, 30);
    const double flops = 4.0 * batch * heads * double(sequence) * sequence * dim;
    std::printf(
        "%s batch %2d: plan %.1f ms, engine %lld | ours %.4f ms (%.0f TFLOP/s), cuDNN %.4f ms (%.0f TFLOP/s), "
        "cuDNN/ours %.3f | |ours - cuDNN| max %.2e mean %.2e, graph replay vs eager max %.1e\n",
        name, batch, build_ms, static_cast<long long>(attention.engine(batch)), ours_ms, flops / ours_ms * 1e-9,
        theirs_ms, flops / theirs_ms * 1e-9, theirs_ms / ours_ms, worst, sum / count, worst_replay);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  const int sequence = argc > 2 ? std::stoi(argv[1]) : 577, heads = argc > 2 ? std::stoi(argv[2]) : 12;
  std::string why;
  if (!CudnnAttention::available(&why)) {
    std::printf("cuDNN attention unavailable: %s\n", why.c_str());
    return 1;
  }
  try {
    probe<__half>(sequence, heads);
    probe<__nv_bfloat16>(sequence, heads);
  } catch (const std::exception& error) {
    std::printf("error: %s\n", error.what());
    return 1;
  }
  return 0;
}

// The CPU encoder's matrix products at trocr-small's shape, batch 8 (8 x 578 rows, hidden 384,
// FFN 1536), timed one by one through cpu::linear: Q, K and V as three products and as one fused
// product, the attention output with its residual, the FFN up with GELU and down with its
// residual; and the self-attention between them (scores, softmax, weighted values) for the same
// 8 images x 6 heads. Medians of 9; GFLOP/s beside each. Where the CPU encoder's time goes, and
// whether fusing Q/K/V is worth a layout of its own (#15, docs/CPU_ENGINE.md).
// Usage: encoder_products_probe [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "cpu/attention.h"
#include "cpu/linear.h"
#include "cpu/threads.h"

namespace {

trocr::LinearWeights random_linear(int out, int in) {
  trocr::LinearWeights layer;
  layer.weight.shape = {out, in};
  layer.weight.values.resize(size_t(out) * in);
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
  for (float& value : layer.weight.values) value = uniform(generator);
  layer.bias.shape = {out};
  layer.bias.values.assign(out, 0.01f);
  return layer;
}

template <typename Run>
double median_ms(Run run) {
  std::vector<double> times;
  for (int i = 0; i < 9; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using trocr::cpu::LinearPostOp;
  trocr::cpu::set_threads(argc > 1 ? std::atoi(argv[1]) : 0);
  const int rows = 8 * 578, hidden = 384, ffn = 1536;
  std::vector<float> input(size_t(rows) * ffn, 0.1f), output(size_t(rows) * 3 * hidden), wide(size_t(rows) * ffn);
  const auto q = random_linear(hidden, hidden), k = random_linear(hidden, hidden), v = random_linear(hidden, hidden);
  const auto qkv = random_linear(3 * hidden, hidden), up = random_linear(ffn, hidden), down = random_linear(hidden, ffn);
  const auto report = [&](const char* name, double ms, double n, double k_size) {
    std::printf("%-28s %8.2f ms %6.0f GFLOP/s\n", name, ms, 2.0 * rows * n * k_size / ms / 1e6);
  };
  report("Q, K, V: three products", median_ms([&] {
           trocr::cpu::linear(input.data(), rows, q, output.data());
           trocr::cpu::linear(input.data(), rows, k, output.data() + size_t(rows) * hidden);
           trocr::cpu::linear(input.data(), rows, v, output.data() + 2 * size_t(rows) * hidden);
         }), 3 * hidden, hidden);
  report("Q, K, V: one fused product", median_ms([&] { trocr::cpu::linear(input.data(), rows, qkv, output.data()); }),
         3 * hidden, hidden);
  report("attention output + residual", median_ms([&] {
           trocr::cpu::linear(input.data(), rows, q, output.data(), LinearPostOp::add_to_output());
         }), hidden, hidden);
  report("FFN up + GELU", median_ms([&] {
           trocr::cpu::linear(input.data(), rows, up, wide.data(), LinearPostOp::activate(trocr::Activation::Gelu));
         }), ffn, hidden);
  report("FFN down + residual", median_ms([&] {
           trocr::cpu::linear(wide.data(), rows, down, output.data(), LinearPostOp::add_to_output());
         }), hidden, ffn);
  trocr::cpu::AttentionShape shape;
  shape.queries = shape.keys = 578;
  shape.heads = 6;
  shape.head_dim = hidden / shape.heads;
  shape.q_stride = shape.kv_stride = hidden;
  shape.scale = 0.125f;
  shape.sequences = 8;
  const double attention_ms = median_ms([&] {
    trocr::cpu::attention(input.data(), input.data() + size_t(rows) * hidden, wide.data(), shape, output.data());
  });
  // Two products of 578 x 578 x 64 per image and head.
  std::printf("%-28s %8.2f ms %6.0f GFLOP/s\n", "self-attention", attention_ms,
              2.0 * 2 * 8 * 6 * 578.0 * 578 * 64 / attention_ms / 1e6);
}

// How the CPU engine's products with few rows compare with oneDNN's matmul (docs/CPU_ENGINE.md):
// cpu::matmul_transposed (which takes our one-pass kernel up to its row threshold) against
// cpu::run_matmul (oneDNN) on decode-step shapes, fp32, the median of 7 timings of 2000 calls.
//   linear_rows_probe [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <vector>

#include "cpu/linear.h"
#include "cpu/onednn.h"
#include "cpu/threads.h"

namespace {

template <typename Call>
double microseconds_per_call(Call call) {
  for (int i = 0; i < 200; ++i) call();
  std::vector<double> samples;
  for (int sample = 0; sample < 7; ++sample) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000; ++i) call();
    samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / 2000);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  trocr::cpu::set_threads(threads);
  std::printf("[\n");
  bool first = true;
  for (auto [k, n] : {std::pair<int64_t, int64_t>{256, 256}, {256, 1024}, {1024, 256}, {256, 3861}, {1024, 4096}}) {
    for (int64_t m : {1, 2, 3, 4, 8}) {
      std::vector<float> x(m * k, 0.5f), w(n * k, 0.01f), b(n, 0.1f), y(m * n);
      const double chosen = microseconds_per_call(
          [&] { trocr::cpu::matmul_transposed(x.data(), m, k, w.data(), n, b.data(), y.data()); });
      const double onednn = microseconds_per_call([&] {
        trocr::cpu::run_matmul(trocr::cpu::linear_shape(m, k, n, true, {}), x.data(), w.data(), b.data(), y.data());
      });
      std::printf("%s {\"threads\": %d, \"rows\": %lld, \"in\": %lld, \"out\": %lld, \"chosen_us\": %.2f, \"onednn_us\": %.2f}",
                  first ? " " : ",\n ", trocr::cpu::threads(), (long long)m, (long long)k, (long long)n, chosen, onednn);
      first = false;
    }
  }
  std::printf("\n]\n");
  return 0;
}

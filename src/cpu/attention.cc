#include "cpu/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace trocr::cpu {

// Per head: scores = scale * Q K^T and out = softmax(scores) V as two BLAS matrix products (the
// encoder's 577 x 577 scores per head made scalar loops the CPU engine's bottleneck), with the
// softmax in between in fp32 and its sum in double.
void attention(const float* q, const float* k, const float* v, const AttentionShape& shape,
               float* out) {
  const int width = shape.heads * shape.head_dim;
  std::vector<float> scores(static_cast<size_t>(shape.queries) * shape.keys);
  for (int h = 0; h < shape.heads; ++h) {
    const int offset = h * shape.head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, shape.queries, shape.keys, shape.head_dim, shape.scale,
                q + offset, static_cast<int>(shape.q_stride), k + offset, static_cast<int>(shape.kv_stride), 0.0f,
                scores.data(), shape.keys);
    for (int i = 0; i < shape.queries; ++i) {
      float* row = scores.data() + static_cast<size_t>(i) * shape.keys;
      const int visible = shape.causal ? std::min(shape.keys, shape.first_query_position + i + 1) : shape.keys;
      const float largest = *std::max_element(row, row + visible);
      double total = 0.0;
      for (int j = 0; j < visible; ++j) {
        row[j] = std::exp(row[j] - largest);
        total += row[j];
      }
      for (int j = 0; j < visible; ++j) row[j] = static_cast<float>(row[j] / total);
      std::fill(row + visible, row + shape.keys, 0.0f);  // masked keys weigh nothing
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, shape.queries, shape.head_dim, shape.keys, 1.0f,
                scores.data(), shape.keys, v + offset, static_cast<int>(shape.kv_stride), 0.0f, out + offset,
                width);
  }
}

}  // namespace trocr::cpu

#include "cpu/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace trocr::cpu {

namespace {

// Softmax of row[0 .. visible) in place (sum in double); keys past `visible` weigh nothing.
void softmax_row(float* row, int visible, int keys) {
  const float largest = *std::max_element(row, row + visible);
  double total = 0.0;
  for (int j = 0; j < visible; ++j) {
    row[j] = std::exp(row[j] - largest);
    total += row[j];
  }
  for (int j = 0; j < visible; ++j) row[j] = static_cast<float>(row[j] / total);
  std::fill(row + visible, row + keys, 0.0f);
}

// One query (a decode step): plain loops. Thousands of such calls per step made BLAS's thread
// hand-offs cost more than the arithmetic.
void attention_one_query(const float* q, const float* k, const float* v, const AttentionShape& shape, float* out) {
  const int visible = shape.causal ? std::min(shape.keys, shape.first_query_position + 1) : shape.keys;
  std::vector<float> scores(shape.keys);
  for (int h = 0; h < shape.heads; ++h) {
    const float* query = q + h * shape.head_dim;
    for (int j = 0; j < visible; ++j) {
      const float* key = k + j * shape.kv_stride + h * shape.head_dim;
      float dot = 0.0f;
      for (int d = 0; d < shape.head_dim; ++d) dot += query[d] * key[d];
      scores[j] = dot * shape.scale;
    }
    softmax_row(scores.data(), visible, shape.keys);
    float* result = out + h * shape.head_dim;
    std::fill(result, result + shape.head_dim, 0.0f);
    for (int j = 0; j < visible; ++j) {
      const float* value = v + j * shape.kv_stride + h * shape.head_dim;
      for (int d = 0; d < shape.head_dim; ++d) result[d] += scores[j] * value[d];
    }
  }
}

}  // namespace

// Many queries (the encoder, teacher forcing): per head, scores = scale * Q K^T and
// out = softmax(scores) V as two BLAS matrix products (the encoder's 577 x 577 scores per head
// made scalar loops the CPU engine's bottleneck), the softmax in between in fp32.
void attention(const float* q, const float* k, const float* v, const AttentionShape& shape,
               float* out) {
  if (shape.queries == 1) return attention_one_query(q, k, v, shape, out);
  const int width = shape.heads * shape.head_dim;
  std::vector<float> scores(static_cast<size_t>(shape.queries) * shape.keys);
  for (int h = 0; h < shape.heads; ++h) {
    const int offset = h * shape.head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, shape.queries, shape.keys, shape.head_dim, shape.scale,
                q + offset, static_cast<int>(shape.q_stride), k + offset, static_cast<int>(shape.kv_stride), 0.0f,
                scores.data(), shape.keys);
    for (int i = 0; i < shape.queries; ++i) {
      const int visible = shape.causal ? std::min(shape.keys, shape.first_query_position + i + 1) : shape.keys;
      softmax_row(scores.data() + static_cast<size_t>(i) * shape.keys, visible, shape.keys);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, shape.queries, shape.head_dim, shape.keys, 1.0f,
                scores.data(), shape.keys, v + offset, static_cast<int>(shape.kv_stride), 0.0f, out + offset,
                width);
  }
}

}  // namespace trocr::cpu

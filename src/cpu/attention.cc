#include "cpu/attention.h"

#include <algorithm>
#include <vector>

#include "cpu/onednn.h"
#include "cpu/vector_math.h"

namespace trocr::cpu {

void attention_per_row(const QueryRow* rows, int64_t count, const AttentionShape& shape) {
  const int64_t tasks = count * shape.heads;
#pragma omp parallel if (tasks > 1)
  {
    std::vector<float> scores(shape.keys);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const QueryRow& row = rows[task / shape.heads];
      const int64_t offset = (task % shape.heads) * shape.head_dim;
      attend(row.q + offset, row.k + offset, row.v + offset, shape.kv_stride, shape.keys, shape.head_dim,
             shape.scale, scores.data(), row.out + offset);
    }
  }
}

// Many queries (the encoder, teacher forcing): for every sequence and head at once, scores =
// scale * Q K^T and out = softmax(scores) V as two batched oneDNN products, the softmax between
// them in our own vector loop (which also applies the causal mask).
void attention(const float* q, const float* k, const float* v, const AttentionShape& shape, float* out) {
  const int64_t width = int64_t{shape.heads} * shape.head_dim;
  const int64_t queries = shape.queries, keys = shape.keys, heads = shape.heads, dim = shape.head_dim;
  // Reused between calls; the threads below reach it through `score_rows` (a thread_local named
  // inside the parallel loop would be each thread's own, empty one).
  thread_local std::vector<float> scores;
  scores.resize(size_t(shape.sequences) * heads * queries * keys);
  float* const score_rows = scores.data();

  MatmulShape products;
  products.outer = shape.sequences;
  products.inner = heads;
  products.m = queries;
  products.k = dim;
  products.n = keys;
  products.a_strides = {queries * shape.q_stride, dim, shape.q_stride, 1};
  products.b_strides = {keys * shape.kv_stride, dim, 1, shape.kv_stride};  // K^T
  products.c_strides = {heads * queries * keys, queries * keys, keys, 1};
  products.scale = shape.scale;
  run_matmul(products, q, k, nullptr, score_rows);

  const int64_t rows = int64_t{shape.sequences} * heads * queries;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t i = row % queries;
    const int64_t visible = shape.causal ? std::min<int64_t>(keys, shape.first_query_position + i + 1) : keys;
    softmax(score_rows + row * keys, visible, keys);
  }

  products.k = keys;
  products.n = dim;
  products.a_strides = {heads * queries * keys, queries * keys, keys, 1};
  products.b_strides = {keys * shape.kv_stride, dim, shape.kv_stride, 1};
  products.c_strides = {queries * width, dim, width, 1};
  products.scale = 1.0f;
  run_matmul(products, score_rows, v, nullptr, out);
}

}  // namespace trocr::cpu

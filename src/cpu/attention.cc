#include "cpu/attention.h"

#include <algorithm>
#include <vector>

#include "cpu/onednn.h"
#include "cpu/threads.h"
#include "cpu/vector_math.h"

namespace trocr::cpu {

void attention_per_row(const QueryRow* rows, int64_t count, const AttentionShape& shape) {
  const int64_t tasks = count * shape.heads;
  int most_keys = 0;
  for (int64_t i = 0; i < count; ++i) most_keys = std::max(most_keys, rows[i].keys);
#pragma omp parallel if (tasks > 1)
  {
    std::vector<float> scores(most_keys);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const QueryRow& row = rows[task / shape.heads];
      const int64_t offset = (task % shape.heads) * shape.head_dim;
      attend(row.q + offset, row.k + offset, row.v + offset, shape.kv_stride, row.keys, shape.head_dim,
             shape.scale, scores.data(), row.out + offset);
    }
  }
}

// Many queries (the encoder, teacher forcing): scores = scale * Q K^T and out = softmax(scores) V
// as two oneDNN products over strided views of Q, K and V, the softmax between them in our own
// vector loop (which also applies the causal mask). With at least as many (sequence, head) pairs
// as threads, each thread takes whole pairs, so that a pair's scores stay in its cache (one
// batch of trocr-small's scores is 64 MB); with fewer, the products are batched over all pairs
// and oneDNN splits them.
void attention(const float* q, const float* k, const float* v, const AttentionShape& shape, float* out) {
  const int64_t width = int64_t{shape.heads} * shape.head_dim;
  const int64_t queries = shape.queries, keys = shape.keys, heads = shape.heads, dim = shape.head_dim;
  const int64_t pairs = int64_t{shape.sequences} * heads;
  const bool pair_per_thread = pairs >= threads();
  const auto products_for = [&](int64_t sequences, int64_t inner) {
    MatmulShape scores;
    scores.outer = sequences;
    scores.inner = inner;
    scores.m = queries;
    scores.k = dim;
    scores.n = keys;
    scores.a_strides = {queries * shape.q_stride, dim, shape.q_stride, 1};
    scores.b_strides = {keys * shape.kv_stride, dim, 1, shape.kv_stride};  // K^T
    scores.c_strides = {inner * queries * keys, queries * keys, keys, 1};
    scores.scale = shape.scale;
    MatmulShape weighted = scores;
    weighted.k = keys;
    weighted.n = dim;
    weighted.a_strides = scores.c_strides;
    weighted.b_strides = {keys * shape.kv_stride, dim, shape.kv_stride, 1};
    weighted.c_strides = {queries * width, dim, width, 1};
    weighted.scale = 1.0f;
    return std::pair{scores, weighted};
  };
  const auto softmax_rows = [&](float* rows, int64_t count) {
    for (int64_t row = 0; row < count; ++row) {
      const int64_t i = row % queries;
      const int64_t visible = shape.causal ? std::min<int64_t>(keys, shape.first_query_position + i + 1) : keys;
      softmax(rows + row * keys, visible, keys);
    }
  };

  if (pair_per_thread) {
    const auto [scores_shape, weighted_shape] = products_for(1, 1);
#pragma omp parallel
    {
      std::vector<float> scores(size_t(queries) * keys);
#pragma omp for schedule(static)
      for (int64_t pair = 0; pair < pairs; ++pair) {
        const int64_t sequence = pair / heads, head = pair % heads;
        const int64_t in = sequence * queries * shape.q_stride + head * dim;
        const int64_t kv = sequence * keys * shape.kv_stride + head * dim;
        run_matmul(scores_shape, q + in, k + kv, nullptr, scores.data());
        softmax_rows(scores.data(), queries);
        run_matmul(weighted_shape, scores.data(), v + kv, nullptr, out + sequence * queries * width + head * dim);
      }
    }
    return;
  }
  // Reused between calls; the threads below reach it through `score_rows` (a thread_local named
  // inside the parallel loop would be each thread's own, empty one).
  thread_local std::vector<float> scores;
  scores.resize(size_t(pairs) * queries * keys);
  float* const score_rows = scores.data();
  const auto [scores_shape, weighted_shape] = products_for(shape.sequences, heads);
  run_matmul(scores_shape, q, k, nullptr, score_rows);
#pragma omp parallel for schedule(static)
  for (int64_t pair = 0; pair < pairs; ++pair) softmax_rows(score_rows + pair * queries * keys, queries);
  run_matmul(weighted_shape, score_rows, v, nullptr, out);
}

}  // namespace trocr::cpu

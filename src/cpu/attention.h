#pragma once
// Multi-head scaled dot-product attention, fp32:
//   out[i, h] = softmax_j(scale * q[i, h] . k[j, h]) v[j, h]
// q is [queries, heads * head_dim] with row stride q_stride, k and v are [keys, heads *
// head_dim] with row stride kv_stride, out is [queries, heads * head_dim] (contiguous).
// With `causal`, query i sees keys 0 .. first_query_position + i only.
#include <cstdint>

namespace trocr::cpu {

struct AttentionShape {
  int queries = 1;
  int keys = 1;
  int heads = 1;
  int head_dim = 64;
  int64_t q_stride = 64;
  int64_t kv_stride = 64;
  float scale = 0.125f;
  bool causal = false;
  int first_query_position = 0;
  // Independent sequences one after another: q, k, v and out each advance by their rows.
  int sequences = 1;
};

void attention(const float* q, const float* k, const float* v, const AttentionShape& shape,
               float* out);

// A decode step: each row's one query against its own `keys` keys and values (shape.queries
// == 1; shape.keys is not read: rows of an in-flight batch stand at different positions); rows
// and heads run in parallel.
struct QueryRow {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  int keys;
};
void attention_per_row(const QueryRow* rows, int64_t count, const AttentionShape& shape);

}  // namespace trocr::cpu

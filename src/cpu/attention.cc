#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace trocr::cpu {

void attention(const float* q, const float* k, const float* v, const AttentionShape& shape,
               float* out) {
  std::vector<float> scores(shape.keys);
  const int width = shape.heads * shape.head_dim;
  for (int i = 0; i < shape.queries; ++i) {
    const int visible = shape.causal ? std::min(shape.keys, shape.first_query_position + i + 1)
                                     : shape.keys;
    for (int h = 0; h < shape.heads; ++h) {
      const float* query = q + i * shape.q_stride + h * shape.head_dim;
      float largest = -INFINITY;
      for (int j = 0; j < visible; ++j) {
        const float* key = k + j * shape.kv_stride + h * shape.head_dim;
        float dot = 0.0f;
        for (int d = 0; d < shape.head_dim; ++d) dot += query[d] * key[d];
        scores[j] = dot * shape.scale;
        largest = std::max(largest, scores[j]);
      }
      double total = 0.0;
      for (int j = 0; j < visible; ++j) {
        scores[j] = std::exp(scores[j] - largest);
        total += scores[j];
      }
      float* result = out + static_cast<int64_t>(i) * width + h * shape.head_dim;
      std::fill(result, result + shape.head_dim, 0.0f);
      for (int j = 0; j < visible; ++j) {
        const float weight = static_cast<float>(scores[j] / total);
        const float* value = v + j * shape.kv_stride + h * shape.head_dim;
        for (int d = 0; d < shape.head_dim; ++d) result[d] += weight * value[d];
      }
    }
  }
}

}  // namespace trocr::cpu

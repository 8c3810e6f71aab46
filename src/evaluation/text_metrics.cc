#include "evaluation/text_metrics.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "text/utf8.h"

namespace trocr {

size_t character_edit_distance(const std::string& hypothesis, const std::string& reference) {
  const std::vector<uint32_t> a = utf8_code_points(hypothesis);
  const std::vector<uint32_t> b = utf8_code_points(reference);
  // One row of the dynamic-programming table: row[j] = distance(a[:i], b[:j]).
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = diagonal + (a[i - 1] != b[j - 1]);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

size_t TextScore::add(const std::string& hypothesis, const std::string& reference) {
  const size_t edits = character_edit_distance(hypothesis, reference);
  ++lines_;
  exact_lines_ += hypothesis == reference;
  edits_ += edits;
  reference_characters_ += utf8_code_points(reference).size();
  return edits;
}

double TextScore::character_error_rate() const {
  return reference_characters_ == 0 ? 0.0 : double(edits_) / double(reference_characters_);
}

double TextScore::line_accuracy() const { return lines_ == 0 ? 0.0 : double(exact_lines_) / double(lines_); }

}  // namespace trocr

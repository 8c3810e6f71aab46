#pragma once
// Recognition quality as OCR papers and trocr-chinese report it: character error rate (edit
// distance over Unicode code points divided by the reference length) and line accuracy.
#include <cstddef>
#include <string>

namespace trocr {

// Levenshtein distance between the code points of two UTF-8 strings.
size_t character_edit_distance(const std::string& hypothesis, const std::string& reference);

class TextScore {
 public:
  // Returns the line's edit distance.
  size_t add(const std::string& hypothesis, const std::string& reference);
  double character_error_rate() const;  // edits / reference characters (0 for no characters)
  double line_accuracy() const;         // exact lines / lines
  size_t lines() const { return lines_; }
  size_t exact_lines() const { return exact_lines_; }
  size_t edits() const { return edits_; }
  size_t reference_characters() const { return reference_characters_; }

 private:
  size_t lines_ = 0, exact_lines_ = 0, edits_ = 0, reference_characters_ = 0;
};

}  // namespace trocr

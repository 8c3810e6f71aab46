#include "text/utf8.h"

namespace trocr {
namespace {

constexpr uint32_t kReplacement = 0xFFFD;

// Length of the valid sequence at text[i], or 0 with *invalid_length set to the maximal
// subpart to replace (Unicode's "best practice" for U+FFFD substitution).
size_t valid_sequence(const std::string& text, size_t i, uint32_t* code_point,
                      size_t* invalid_length) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  *invalid_length = 1;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  size_t length;
  unsigned char low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  uint32_t value = lead & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) return 0;
    const unsigned char next = byte(i + k);
    const unsigned char lower = k == 1 ? low : 0x80;
    const unsigned char upper = k == 1 ? high : 0xBF;
    if (next < lower || next > upper) return 0;
    value = (value << 6) | (next & 0x3F);
    *invalid_length = k + 1;
  }
  *code_point = value;
  return length;
}

}  // namespace

std::vector<uint32_t> utf8_code_points(const std::string& text) {
  std::vector<uint32_t> points;
  for (size_t i = 0; i < text.size();) {
    uint32_t code_point;
    size_t invalid_length;
    const size_t length = valid_sequence(text, i, &code_point, &invalid_length);
    points.push_back(length ? code_point : kReplacement);
    i += length ? length : invalid_length;
  }
  return points;
}

std::string utf8_encode(uint32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

std::string utf8_sanitize(const std::string& bytes) {
  std::string out;
  for (uint32_t code_point : utf8_code_points(bytes)) out += utf8_encode(code_point);
  return out;
}

}  // namespace trocr

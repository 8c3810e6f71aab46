#include "serve/base64.h"

#include <array>

#include "common/check.h"

namespace trocr {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> decoding_table() {
  std::array<int8_t, 256> table{};
  for (auto& value : table) value = -1;
  for (int i = 0; i < 64; ++i) table[uint8_t(kAlphabet[i])] = int8_t(i);
  table[uint8_t('-')] = 62;  // the URL-safe alphabet
  table[uint8_t('_')] = 63;
  return table;
}

std::string_view without_data_url(std::string_view text) {
  if (text.substr(0, 5) != "data:") return text;
  const size_t comma = text.find(',');
  const size_t marker = text.find(";base64");
  if (comma == std::string_view::npos || marker == std::string_view::npos || marker > comma) return text;
  return text.substr(comma + 1);
}

}  // namespace

std::string decode_base64(std::string_view text, const std::string& name) {
  static constexpr std::array<int8_t, 256> table = decoding_table();
  const std::string_view original = text;
  text = without_data_url(text);
  const size_t offset = size_t(text.data() - original.data());
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3 + 3);
  uint32_t bits = 0;
  int pending = 0;  // sextets in `bits`
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int value = table[uint8_t(c)];
    if (value < 0 || padding > 0) {
      fail("{}: not base64 (character {} at offset {})", name,
           c >= ' ' && c < 127 ? fmt::format("'{}'", c) : fmt::format("0x{:02x}", uint8_t(c)), offset + i);
    }
    bits = (bits << 6) | uint32_t(value);
    if (++pending == 4) {
      bytes.push_back(char(bits >> 16));
      bytes.push_back(char(bits >> 8));
      bytes.push_back(char(bits));
      bits = 0;
      pending = 0;
    }
  }
  if (pending == 1) fail("{}: not base64 (its length leaves a lone character at the end)", name);
  if (padding > 0 && (pending + padding) % 4 != 0) fail("{}: not base64 (wrong padding)", name);
  if (pending == 2) bytes.push_back(char(bits >> 4));
  if (pending == 3) {
    bytes.push_back(char(bits >> 10));
    bytes.push_back(char(bits >> 2));
  }
  return bytes;
}

std::string encode_base64(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t left = std::min<size_t>(3, bytes.size() - i);
    uint32_t bits = uint32_t(uint8_t(bytes[i])) << 16;
    if (left > 1) bits |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (left > 2) bits |= uint32_t(uint8_t(bytes[i + 2]));
    for (size_t k = 0; k < 4; ++k) text.push_back(k <= left ? kAlphabet[(bits >> (18 - 6 * k)) & 63] : '=');
  }
  return text;
}

}  // namespace trocr

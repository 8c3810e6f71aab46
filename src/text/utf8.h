#pragma once
// The UTF-8 handling the detokenizers need.
#include <cstdint>
#include <string>
#include <vector>

namespace trocr {

// Code points of valid UTF-8 text; invalid bytes come out as U+FFFD.
std::vector<uint32_t> utf8_code_points(const std::string& text);
std::string utf8_encode(uint32_t code_point);
// Replaces each maximal invalid subsequence with U+FFFD, as Python's
// bytes.decode("utf-8", errors="replace") and Rust's from_utf8_lossy do.
std::string utf8_sanitize(const std::string& bytes);

}  // namespace trocr

#pragma once
// Base64 (RFC 4648) as OCR clients send images in JSON: the standard or the URL-safe alphabet,
// padded or not, with line breaks allowed (MIME), after an optional data URL prefix
// ("data:image/png;base64,"). Anything else is refused with the position of the first fault.
#include <string>
#include <string_view>

namespace trocr {

// `name` (e.g. "images[2]") is used in the trocr::Error.
std::string decode_base64(std::string_view text, const std::string& name);
std::string encode_base64(std::string_view bytes);

}  // namespace trocr

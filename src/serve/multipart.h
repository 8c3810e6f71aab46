#pragma once
// multipart/form-data bodies (RFC 7578) read in upload order, without copying the parts.
#include <string>
#include <string_view>
#include <vector>

namespace trocr {

struct FormPart {
  std::string name;      // from Content-Disposition
  std::string filename;  // "" when the part is a plain field
  std::string_view content;  // into the body
};

// The boundary comes from the Content-Type header. A trocr::Error names what is malformed.
std::vector<FormPart> parse_multipart(std::string_view body, const std::string& content_type, size_t max_parts);

// The Content-Type's media type, lower case, parameters dropped ("multipart/form-data").
std::string media_type(std::string_view content_type);
// A parameter of a Content-Type or Content-Disposition value (quoted or not); "" when absent.
std::string header_parameter(std::string_view value, std::string_view parameter);

}  // namespace trocr

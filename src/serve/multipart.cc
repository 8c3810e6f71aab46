#include "serve/multipart.h"

#include <algorithm>

#include "common/check.h"

namespace trocr {
namespace {

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return result;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Names go into messages, results and logs: control characters become '?'.
std::string printable(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return text;
}

}  // namespace

std::string media_type(std::string_view content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';'))));
}

std::string header_parameter(std::string_view value, std::string_view parameter) {
  // Split at ';' outside quotes; each piece is name=value or name="value".
  size_t position = value.find(';');
  while (position != std::string_view::npos && position < value.size()) {
    size_t start = position + 1;
    bool quoted = false;
    size_t end = start;
    for (; end < value.size() && (quoted || value[end] != ';'); ++end) {
      if (value[end] == '"') quoted = !quoted;
      if (quoted && value[end] == '\\') ++end;
    }
    const std::string_view piece = trim(value.substr(start, end - start));
    const size_t equals = piece.find('=');
    if (equals != std::string_view::npos && lower(trim(piece.substr(0, equals))) == lower(parameter)) {
      std::string_view raw = trim(piece.substr(equals + 1));
      if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
        std::string unquoted;
        for (size_t i = 1; i + 1 < raw.size(); ++i) {
          if (raw[i] == '\\' && i + 2 < raw.size()) ++i;
          unquoted.push_back(raw[i]);
        }
        return unquoted;
      }
      return std::string(raw);
    }
    position = end;
  }
  return {};
}

std::vector<FormPart> parse_multipart(std::string_view body, const std::string& content_type, size_t max_parts) {
  const std::string boundary = header_parameter(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) fail("the multipart Content-Type has no usable boundary parameter");
  const std::string delimiter = "--" + boundary;
  // The first delimiter may follow a preamble; every later one starts on a new line.
  size_t at = body.substr(0, delimiter.size()) == delimiter ? 0 : body.find("\r\n" + delimiter);
  if (at == std::string_view::npos) fail("the multipart body has no part (no '{}' line)", delimiter);
  at += at == 0 ? delimiter.size() : delimiter.size() + 2;
  std::vector<FormPart> parts;
  while (true) {
    if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
    // Transport padding may follow a delimiter before its line break.
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.substr(at, 2) != "\r\n") fail("multipart part {}: the delimiter line does not end in CRLF", parts.size());
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) fail("multipart part {}: its headers do not end", parts.size());
    FormPart part;
    bool disposition = false;
    for (size_t line = at; line < headers_end + 2;) {
      const size_t line_end = body.find("\r\n", line);
      const std::string_view header = body.substr(line, line_end - line);
      line = line_end + 2;
      const size_t colon = header.find(':');
      if (colon == std::string_view::npos) fail("multipart part {}: a header line without ':'", parts.size());
      if (lower(trim(header.substr(0, colon))) != "content-disposition") continue;
      const std::string_view value = header.substr(colon + 1);
      if (media_type(value) != "form-data") fail("multipart part {}: its Content-Disposition is not form-data", parts.size());
      part.name = printable(header_parameter(value, "name"));
      part.filename = printable(header_parameter(value, "filename"));
      disposition = true;
    }
    if (!disposition) fail("multipart part {}: no Content-Disposition header", parts.size());
    const size_t content_start = headers_end + 4;
    const size_t content_end = body.find("\r\n" + delimiter, content_start);
    if (content_end == std::string_view::npos) fail("multipart part {}: the body ends inside it (no closing delimiter)", parts.size());
    part.content = body.substr(content_start, content_end - content_start);
    if (parts.size() == max_parts) fail("the multipart body has more than {} parts", max_parts);
    parts.push_back(std::move(part));
    at = content_end + 2 + delimiter.size();
  }
}

}  // namespace trocr

#include "formats/json_file.h"

#include <limits>

#include "common/check.h"
#include "formats/mapped_file.h"

namespace trocr {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  if (text.empty()) fail("{}: empty file, expected a JSON object", path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    fail("{}: invalid JSON: {}", path, error.what());
  }
}

JsonFields::JsonFields(const nlohmann::json& object, std::string file, std::string prefix)
    : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {
  if (!object_.is_object()) {
    fail("{}: {} must be a JSON object, found {}", file_, prefix_.empty() ? "the file" : prefix_,
         object_.type_name());
  }
}

std::string JsonFields::where(const std::string& key) const {
  return fmt::format("{}: field '{}{}'", file_, prefix_.empty() ? "" : prefix_ + ".", key);
}

bool JsonFields::has(const std::string& key) const {
  auto found = object_.find(key);
  return found != object_.end() && !found->is_null();
}

const nlohmann::json& JsonFields::at(const std::string& key) const {
  if (!has(key)) fail("{} is missing", where(key));
  return object_.at(key);
}

JsonFields JsonFields::object(const std::string& key) const {
  const auto& value = at(key);
  if (!value.is_object()) fail("{} must be an object, found {}", where(key), value.type_name());
  return JsonFields(value, file_, prefix_.empty() ? key : prefix_ + "." + key);
}

std::optional<int64_t> JsonFields::optional_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& value = object_.at(key);
  if (!value.is_number_integer()) {
    fail("{} must be an integer, found {}", where(key), value.dump());
  }
  return value.get<int64_t>();
}

std::optional<double> JsonFields::optional_number(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& value = object_.at(key);
  if (!value.is_number()) fail("{} must be a number, found {}", where(key), value.dump());
  return value.get<double>();
}

std::optional<bool> JsonFields::optional_bool(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& value = object_.at(key);
  if (!value.is_boolean()) fail("{} must be true or false, found {}", where(key), value.dump());
  return value.get<bool>();
}

std::optional<std::string> JsonFields::optional_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& value = object_.at(key);
  if (!value.is_string()) fail("{} must be a string, found {}", where(key), value.dump());
  return value.get<std::string>();
}

int JsonFields::get_int(const std::string& key, int fallback) const {
  const auto value = optional_int(key);
  if (!value) return fallback;
  if (*value < std::numeric_limits<int>::min() || *value > std::numeric_limits<int>::max()) {
    fail("{} is out of range: {}", where(key), *value);
  }
  return static_cast<int>(*value);
}

int JsonFields::require_positive_int(const std::string& key) const {
  if (!has(key)) fail("{} is missing", where(key));
  const int value = get_int(key, 0);
  if (value <= 0) fail("{} must be positive, found {}", where(key), value);
  return value;
}

double JsonFields::get_number(const std::string& key, double fallback) const {
  return optional_number(key).value_or(fallback);
}

bool JsonFields::get_bool(const std::string& key, bool fallback) const {
  return optional_bool(key).value_or(fallback);
}

std::string JsonFields::get_string(const std::string& key, const std::string& fallback) const {
  return optional_string(key).value_or(fallback);
}

}  // namespace trocr

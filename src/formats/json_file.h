#pragma once
// JSON files of a checkpoint directory, read with checks that name the file and the field.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace trocr {

nlohmann::json read_json_file(const std::string& path);

// Typed access to one JSON object. A null value counts as absent, as HF writes nulls for
// unset fields.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string file, std::string prefix = "");

  bool has(const std::string& key) const;
  const nlohmann::json& at(const std::string& key) const;
  JsonFields object(const std::string& key) const;

  std::optional<int64_t> optional_int(const std::string& key) const;
  std::optional<double> optional_number(const std::string& key) const;
  std::optional<bool> optional_bool(const std::string& key) const;
  std::optional<std::string> optional_string(const std::string& key) const;

  int get_int(const std::string& key, int fallback) const;
  int require_positive_int(const std::string& key) const;
  double get_number(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

  // "file: field 'prefix.key'" for error messages.
  std::string where(const std::string& key) const;

 private:
  const nlohmann::json& object_;
  std::string file_;
  std::string prefix_;
};

}  // namespace trocr

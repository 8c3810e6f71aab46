// Reader for the safetensors format: 8-byte little-endian header length, a JSON header
// mapping names to {dtype, shape, data_offsets}, then the tensor bytes.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "formats/checkpoint.h"

namespace trocr {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

DType parse_safetensors_dtype(const std::string& path, const std::string& name,
                              const std::string& dtype) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::Bool}};
  for (const auto& [text, value] : kNames) {
    if (dtype == text) return value;
  }
  fail("{}: tensor '{}' has unsupported dtype '{}' (expected F32, F16, BF16, F64, I64, I32, I16, "
       "I8, U8 or BOOL)",
       path, name, dtype);
}

TensorRecord parse_entry(const std::string& path, const std::string& name,
                         const nlohmann::json& entry, const unsigned char* data,
                         uint64_t data_size, std::pair<uint64_t, uint64_t>* range) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    fail("{}: header entry '{}' must be an object with dtype, shape and data_offsets", path, name);
  }
  const auto& dtype = entry["dtype"];
  const auto& shape = entry["shape"];
  const auto& offsets = entry["data_offsets"];
  if (!dtype.is_string()) fail("{}: tensor '{}': dtype is not a string", path, name);
  if (!shape.is_array()) fail("{}: tensor '{}': shape is not an array", path, name);
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    fail("{}: tensor '{}': data_offsets must be two non-negative integers", path, name);
  }
  TensorRecord record;
  record.dtype = parse_safetensors_dtype(path, name, dtype.get<std::string>());
  uint64_t count = 1;
  for (const auto& dimension : shape) {
    if (!dimension.is_number_unsigned()) {
      fail("{}: tensor '{}': shape {} has a dimension that is not a non-negative integer", path,
           name, shape.dump());
    }
    const uint64_t value = dimension.get<uint64_t>();
    if (!checked_mul(count, value, &count) || count > (uint64_t{1} << 48)) {
      fail("{}: tensor '{}': shape {} is too large", path, name, shape.dump());
    }
    record.shape.push_back(static_cast<int64_t>(value));
  }
  const uint64_t begin = offsets[0].get<uint64_t>();
  const uint64_t end = offsets[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    fail("{}: tensor '{}': data_offsets [{}, {}] lie outside the {} bytes of data", path, name,
         begin, end, data_size);
  }
  const uint64_t expected = count * dtype_size(record.dtype);
  if (end - begin != expected) {
    fail("{}: tensor '{}': {} {} needs {} bytes but data_offsets [{}, {}] give {}", path, name,
         dtype_name(record.dtype), shape_string(record.shape), expected, begin, end, end - begin);
  }
  record.data = data + begin;
  record.nbytes = static_cast<size_t>(expected);
  *range = {begin, end};
  return record;
}

}  // namespace

Checkpoint read_safetensors(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  if (file->size() < 8) {
    fail("{}: truncated safetensors file: {} bytes, the header length alone needs 8", path,
         file->size());
  }
  uint64_t header_size;
  std::memcpy(&header_size, file->data(), 8);
  if (header_size > kMaxHeaderBytes || header_size > file->size() - 8) {
    fail("{}: safetensors header claims {} bytes, but the file has {} after the length field{}",
         path, header_size, file->size() - 8,
         header_size > kMaxHeaderBytes ? " (and the limit is 100 MiB)" : "");
  }
  const char* header_text = reinterpret_cast<const char*>(file->data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text, header_text + header_size);
  } catch (const nlohmann::json::exception& error) {
    fail("{}: safetensors header is not valid JSON: {}", path, error.what());
  }
  if (!header.is_object()) fail("{}: safetensors header is not a JSON object", path);

  const unsigned char* data = file->data() + 8 + header_size;
  const uint64_t data_size = file->size() - 8 - header_size;
  Checkpoint checkpoint;
  checkpoint.path = path;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ is not an object", path);
      continue;
    }
    std::pair<uint64_t, uint64_t> range;
    checkpoint.tensors[name] = parse_entry(path, name, entry, data, data_size, &range);
    ranges.push_back({range, name});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    const auto& previous = ranges[i - 1];
    const auto& current = ranges[i];
    if (current.first.first < previous.first.second) {
      fail("{}: tensors '{}' and '{}' overlap (bytes [{}, {}) and [{}, {}))", path, previous.second,
           current.second, previous.first.first, previous.first.second, current.first.first,
           current.first.second);
    }
  }
  checkpoint.file = std::move(file);
  return checkpoint;
}

}  // namespace trocr

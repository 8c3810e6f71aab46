#include "formats/checkpoint.h"

#include <cstring>

#include "common/check.h"

namespace trocr {

int64_t TensorRecord::element_count() const {
  int64_t count = 1;
  for (int64_t dimension : shape) count *= dimension;
  return count;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

const TensorRecord* Checkpoint::find(const std::string& name) const {
  auto found = tensors.find(name);
  return found == tensors.end() ? nullptr : &found->second;
}

Checkpoint read_checkpoint(const std::string& path) {
  auto file = std::make_shared<MappedFile>(path);
  if (file->size() == 0) fail("{}: empty file, expected a safetensors or PyTorch checkpoint", path);
  if (file->size() >= 4 && std::memcmp(file->data(), "PK\x03\x04", 4) == 0) {
    return read_torch_checkpoint(file);
  }
  if (file->size() >= 2 && file->data()[0] == 0x80) {
    fail("{}: legacy (pre-1.6, non-zip) PyTorch format is not supported; re-save it with a "
         "recent torch.save",
         path);
  }
  return read_safetensors(file);
}

}  // namespace trocr

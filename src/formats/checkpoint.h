#pragma once
// A checkpoint as its readers return it: named tensors whose bytes stay in the mapped file
// (or in buffers the checkpoint owns, where a layout had to be made contiguous).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "formats/mapped_file.h"

namespace trocr {

struct TensorRecord {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;  // contiguous, row-major, little-endian
  size_t nbytes = 0;

  int64_t element_count() const;
};

std::string shape_string(const std::vector<int64_t>& shape);

struct Checkpoint {
  std::string path;
  std::map<std::string, TensorRecord> tensors;
  std::shared_ptr<MappedFile> file;
  std::vector<std::vector<unsigned char>> owned_buffers;

  const TensorRecord* find(const std::string& name) const;
};

// model.safetensors (https://github.com/huggingface/safetensors format).
Checkpoint read_safetensors(std::shared_ptr<MappedFile> file);
// pytorch_model.bin written by torch.save (zip container, pickle with persistent storages).
Checkpoint read_torch_checkpoint(std::shared_ptr<MappedFile> file);
// Maps the file and picks the reader from its contents, not its name.
Checkpoint read_checkpoint(const std::string& path);

}  // namespace trocr

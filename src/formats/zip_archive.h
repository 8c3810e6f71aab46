#pragma once
// The subset of ZIP that torch.save writes: stored (uncompressed) entries, optionally zip64.
// Entries are returned as spans into the mapped file.
#include <map>
#include <string>

#include "formats/mapped_file.h"

namespace trocr {

struct ZipEntry {
  const unsigned char* data = nullptr;
  size_t size = 0;
};

class ZipArchive {
 public:
  explicit ZipArchive(const MappedFile& file);

  const ZipEntry* find(const std::string& name) const;
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }

 private:
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace trocr

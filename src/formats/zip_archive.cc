#include "formats/zip_archive.h"

#include "common/check.h"
#include "formats/byte_reader.h"

namespace trocr {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfCentralDirectory = 0x06064b50;
constexpr size_t kMaxEntries = 1u << 20;

struct Directory {
  uint64_t offset = 0;
  uint64_t entry_count = 0;
};

size_t find_end_record(const MappedFile& file) {
  const size_t size = file.size();
  if (size < 22) fail("{}: truncated zip archive ({} bytes)", file.path(), size);
  // The record is at least 22 bytes and may be followed by a comment of up to 65535 bytes.
  const size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (size_t position = size - 22 + 1; position-- > lowest;) {
    uint32_t signature;
    std::memcpy(&signature, file.data() + position, 4);
    if (signature == kEndOfCentralDirectory) return position;
  }
  fail("{}: not a zip archive: no end-of-central-directory record", file.path());
}

Directory read_directory_location(const MappedFile& file, size_t end_record) {
  ByteReader reader(file.data(), file.size(), file.path() + " (zip end record)");
  reader.seek(end_record + 4);
  const uint16_t disk = reader.u16();
  reader.u16();  // disk with the directory
  reader.u16();  // entries on this disk
  Directory directory;
  directory.entry_count = reader.u16();
  reader.u32();  // directory size
  directory.offset = reader.u32();
  if (disk != 0) fail("{}: multi-disk zip archives are not supported", file.path());
  const bool needs_zip64 = directory.entry_count == 0xffff || directory.offset == 0xffffffffu;
  if (needs_zip64 && end_record >= 20) {
    reader.seek(end_record - 20);
    if (reader.u32() == kZip64Locator) {
      reader.u32();
      const uint64_t record_offset = reader.u64();
      reader.seek(record_offset);
      if (reader.u32() != kZip64EndOfCentralDirectory) {
        fail("{}: zip64 locator points at offset {}, which holds no zip64 end record",
             file.path(), record_offset);
      }
      reader.take(8 + 2 + 2 + 4 + 4 + 8);  // size, versions, disk numbers, entries on disk
      directory.entry_count = reader.u64();
      reader.u64();  // directory size
      directory.offset = reader.u64();
    }
  }
  if (directory.entry_count > kMaxEntries) {
    fail("{}: zip archive claims {} entries", file.path(), directory.entry_count);
  }
  return directory;
}

// Reads the zip64 extended-information extra field for the values that were saturated.
void read_zip64_extra(ByteReader& extra, uint64_t* compressed, uint64_t* uncompressed,
                      uint64_t* local_offset) {
  while (extra.remaining() >= 4) {
    const uint16_t id = extra.u16();
    const uint16_t length = extra.u16();
    const unsigned char* body = extra.take(length);
    if (id != 0x0001) continue;
    ByteReader field(body, length, extra.what());
    if (*uncompressed == 0xffffffffu) *uncompressed = field.u64();
    if (*compressed == 0xffffffffu) *compressed = field.u64();
    if (*local_offset == 0xffffffffu) *local_offset = field.u64();
    return;
  }
}

}  // namespace

ZipArchive::ZipArchive(const MappedFile& file) {
  const Directory directory = read_directory_location(file, find_end_record(file));
  ByteReader reader(file.data(), file.size(), file.path() + " (zip central directory)");
  reader.seek(directory.offset);
  for (uint64_t index = 0; index < directory.entry_count; ++index) {
    if (reader.u32() != kCentralHeader) {
      fail("{}: zip central directory entry {} has a bad signature", file.path(), index);
    }
    reader.take(6);  // versions, flags
    const uint16_t method = reader.u16();
    reader.take(8);  // time, date, crc
    uint64_t compressed = reader.u32();
    uint64_t uncompressed = reader.u32();
    const uint16_t name_length = reader.u16();
    const uint16_t extra_length = reader.u16();
    const uint16_t comment_length = reader.u16();
    reader.take(8);  // disk, attributes
    uint64_t local_offset = reader.u32();
    const std::string name = reader.string(name_length);
    ByteReader extra(reader.take(extra_length), extra_length, reader.what());
    read_zip64_extra(extra, &compressed, &uncompressed, &local_offset);
    reader.take(comment_length);

    if (method != 0) {
      fail("{}: zip entry '{}' is compressed (method {}); torch.save writes stored entries only",
           file.path(), name, method);
    }
    if (compressed != uncompressed) {
      fail("{}: zip entry '{}' is stored but its sizes differ ({} vs {})", file.path(), name,
           compressed, uncompressed);
    }
    ByteReader local(file.data(), file.size(), file.path() + " (zip entry '" + name + "')");
    local.seek(local_offset);
    if (local.u32() != kLocalHeader) {
      fail("{}: zip entry '{}' points at offset {}, which holds no local header", file.path(), name,
           local_offset);
    }
    local.take(22);
    const uint16_t local_name_length = local.u16();
    const uint16_t local_extra_length = local.u16();
    local.take(local_name_length);
    local.take(local_extra_length);
    ZipEntry entry;
    entry.size = static_cast<size_t>(uncompressed);
    entry.data = local.take(entry.size);
    entries_[name] = entry;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto found = entries_.find(name);
  return found == entries_.end() ? nullptr : &found->second;
}

}  // namespace trocr

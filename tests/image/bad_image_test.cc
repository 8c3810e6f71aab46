// Broken, hostile and oversized images: clear errors naming the file, never a crash.
#include <zlib.h>

#include <cstring>

#include "support/test_support.h"
#include "trocr/error.h"
#include "trocr/image.h"

namespace trocr::test {
namespace {

std::string chunk(const std::string& kind, const std::string& data) {
  std::string out;
  const uint32_t length = __builtin_bswap32(static_cast<uint32_t>(data.size()));
  out.append(reinterpret_cast<const char*>(&length), 4);
  out += kind + data;
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(kind.data()), kind.size());
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), data.size());
  const uint32_t big_endian_crc = __builtin_bswap32(static_cast<uint32_t>(crc));
  out.append(reinterpret_cast<const char*>(&big_endian_crc), 4);
  return out;
}

std::string png_header(uint32_t width, uint32_t height) {
  std::string ihdr(13, '\0');
  const uint32_t w = __builtin_bswap32(width), h = __builtin_bswap32(height);
  std::memcpy(&ihdr[0], &w, 4);
  std::memcpy(&ihdr[4], &h, 4);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // RGB
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr);
}

TEST(BadImages, ClearErrors) {
  ScratchDir scratch;
  const std::string png = read_file(data_dir() + "/images/line_rgb.png");
  const std::string jpeg = read_file(data_dir() + "/images/wide.jpg");
  std::string bad_crc = png;
  bad_crc[png.find("IDAT") + 10] ^= 0x55;
  std::string jpeg_no_width = jpeg;  // the frame header's width set to 0
  const size_t frame = jpeg.find("\xff\xc0");
  jpeg_no_width[frame + 7] = jpeg_no_width[frame + 8] = '\0';
  struct Case {
    const char* name;
    std::string bytes;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"empty.png", "", "empty file"},
      {"text.png", "hello, not an image", "not a PNG, JPEG, WebP, GIF, BMP or TIFF"},
      {"gif.png", "GIF89a\x01\x00\x01\x00", "not a valid GIF"},
      {"bitmap.bmp", "BM\x10\x00\x00\x00", "BMP file is truncated"},
      {"header.tif", std::string("II*\0\x08\0\0\0", 8), "not a valid TIFF"},
      {"truncated.png", png.substr(0, png.size() / 2), "truncated"},
      {"header_only.png", png.substr(0, 40), "PNG"},
      {"bad_crc.png", bad_crc, "PNG"},
      {"huge.png", png_header(100000, 100000) + chunk("IEND", ""), "100000"},
      {"wide.png", png_header(70000, 1) + chunk("IEND", ""), "larger than the limit"},
      {"zero.png", png_header(0, 5) + chunk("IEND", ""), "no pixels"},
      {"truncated.jpg", jpeg.substr(0, jpeg.size() / 2), "truncated"},
      {"header_only.jpg", jpeg.substr(0, 200), "JPEG"},
      {"soi_only.jpg", "\xff\xd8\xff", "JPEG"},
      {"no_width.jpg", jpeg_no_width, "JPEG"},
  };
  for (const auto& broken : cases) {
    SCOPED_TRACE(broken.name);
    const std::string path = scratch.path(broken.name);
    write_file(path, broken.bytes);
    EXPECT_ERROR_CONTAINS(read_image_file(path), path.c_str(), broken.expected);
  }
  EXPECT_ERROR_CONTAINS(read_image_file(scratch.path("missing.png")), "missing.png", "cannot open");
}

TEST(BadImages, LimitsAreCheckedBeforeDecoding) {
  ImageLimits limits;
  limits.max_pixels = 100;
  const std::string path = data_dir() + "/images/line_rgb.png";
  EXPECT_ERROR_CONTAINS(read_image_file(path, limits), "320x48", "larger than the limit");
  const std::string jpeg = data_dir() + "/images/wide.jpg";
  EXPECT_ERROR_CONTAINS(read_image_file(jpeg, limits), "600x40", "larger than the limit");
}

}  // namespace
}  // namespace trocr::test

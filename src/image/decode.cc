#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/check.h"
#include "formats/mapped_file.h"
#include "image/decoders.h"

namespace trocr {

void check_image_size(const std::string& name, int64_t width, int64_t height,
                      const ImageLimits& limits) {
  if (width <= 0 || height <= 0) fail("{}: image has no pixels ({}x{})", name, width, height);
  if (width > limits.max_side || height > limits.max_side || width * height > limits.max_pixels) {
    fail("{}: image of {}x{} pixels is larger than the limit ({} pixels, {} per side)", name,
         width, height, limits.max_pixels, limits.max_side);
  }
}

Palette gray_ramp_palette() {
  Palette palette;
  for (int i = 0; i < 256; ++i) palette[i] = {uint8_t(i), uint8_t(i), uint8_t(i)};
  return palette;
}

void cmyk_to_rgb_as_pillow(const uint8_t* cmyk, uint8_t* rgb) {
  const int remaining = 255 - cmyk[3];
  for (int c = 0; c < 3; ++c) {
    const int scaled = cmyk[c] * remaining + 128;  // Pillow's MULDIV255
    const int value = remaining - (((scaled >> 8) + scaled) >> 8);
    rgb[c] = static_cast<uint8_t>(value < 0 ? 0 : value > 255 ? 255 : value);
  }
}

RgbImage decode_image(const uint8_t* data, size_t size, const std::string& name,
                      const ImageLimits& limits) {
  if (size == 0) fail("{}: empty file, expected a PNG, JPEG, WebP, GIF, BMP or TIFF image", name);
  static const uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= sizeof kPng && std::memcmp(data, kPng, sizeof kPng) == 0) {
    return decode_png(data, size, name, limits);
  }
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    return decode_jpeg(data, size, name, limits);
  }
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    return decode_webp(data, size, name, limits);
  }
  if (size >= 6 && (std::memcmp(data, "GIF87a", 6) == 0 || std::memcmp(data, "GIF89a", 6) == 0)) {
    return decode_gif(data, size, name, limits);
  }
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return decode_bmp(data, size, name, limits);
  if (size >= 4 && (std::memcmp(data, "II*\0", 4) == 0 || std::memcmp(data, "MM\0*", 4) == 0)) {
    return decode_tiff(data, size, name, limits);
  }
  fail("{}: not a PNG, JPEG, WebP, GIF, BMP or TIFF image (unrecognised signature)", name);
}

RgbImage read_image_file(const std::string& path, const ImageLimits& limits) {
  MappedFile file(path);
  return decode_image(file.data(), file.size(), path, limits);
}

bool has_image_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg" || extension == ".webp" ||
         extension == ".gif" || extension == ".bmp" || extension == ".tif" || extension == ".tiff";
}

}  // namespace trocr

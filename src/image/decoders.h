#pragma once
// Format decoders, each producing the RGB image PIL's convert("RGB") would.
#include <array>
#include <cstddef>
#include <cstdint>

#include "trocr/image.h"

namespace trocr {

RgbImage decode_png(const uint8_t* data, size_t size, const std::string& name,
                    const ImageLimits& limits);
RgbImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                     const ImageLimits& limits);
RgbImage decode_webp(const uint8_t* data, size_t size, const std::string& name,
                     const ImageLimits& limits);
RgbImage decode_gif(const uint8_t* data, size_t size, const std::string& name,
                    const ImageLimits& limits);
RgbImage decode_bmp(const uint8_t* data, size_t size, const std::string& name,
                    const ImageLimits& limits);
RgbImage decode_tiff(const uint8_t* data, size_t size, const std::string& name,
                     const ImageLimits& limits);

// 256 RGB entries that start as Pillow's default gray ramp: indices past a file's own palette
// (or every index, where it has none) read (i, i, i).
using Palette = std::array<std::array<uint8_t, 3>, 256>;
Palette gray_ramp_palette();

// Sample x of a row of 1, 2, 4 or 8-bit samples packed from the most significant bit.
inline int packed_sample(const uint8_t* row, size_t x, int bits) {
  const int shift = 8 - bits - int((x * bits) % 8);
  return (row[x * bits / 8] >> shift) & ((1 << bits) - 1);
}

// Pillow's cmyk2rgb for one pixel of ink amounts (0: no ink), with its rounding.
void cmyk_to_rgb_as_pillow(const uint8_t* cmyk, uint8_t* rgb);

// Refuses dimensions before allocating; shared by the decoders.
void check_image_size(const std::string& name, int64_t width, int64_t height,
                      const ImageLimits& limits);

}  // namespace trocr

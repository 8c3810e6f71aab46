#pragma once
// Format decoders, each producing the RGB image PIL's convert("RGB") would.
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

// Pillow's cmyk2rgb for one pixel of ink amounts (0: no ink), with its rounding.
void cmyk_to_rgb_as_pillow(const uint8_t* cmyk, uint8_t* rgb);

// Refuses dimensions before allocating; shared by the decoders.
void check_image_size(const std::string& name, int64_t width, int64_t height,
                      const ImageLimits& limits);

}  // namespace trocr

// PNG through libpng, converted to RGB as Pillow does: 16-bit samples keep their high byte,
// except 16-bit grayscale without alpha, which Pillow opens as mode I;16 and clips to 255;
// alpha and tRNS are dropped, not composited; palette indices past the PLTE chunk read
// Pillow's default grayscale ramp.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "common/check.h"
#include "image/decoders.h"

namespace trocr {
namespace {

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t offset;
  char error[256];
};

void on_error(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(source->error, sizeof source->error, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, size_t count) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (count > source->size - source->offset) png_error(png, "file is truncated");
  std::memcpy(out, source->data + source->offset, count);
  source->offset += count;
}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct PngLayout {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_colorp palette = nullptr;
  int palette_size = 0;
};

void convert_row(const PngLayout& layout, const uint8_t* in, uint8_t* out) {
  const bool wide = layout.bit_depth == 16;
  const int sample = wide ? 2 : 1;  // bytes per sample; the high byte comes first
  for (png_uint_32 x = 0; x < layout.width; ++x, out += 3) {
    switch (layout.color_type) {
      case PNG_COLOR_TYPE_GRAY: {
        const uint8_t* p = in + x * sample;
        const int value = wide ? std::min((p[0] << 8) | p[1], 255) : p[0];
        out[0] = out[1] = out[2] = static_cast<uint8_t>(value);
        break;
      }
      case PNG_COLOR_TYPE_GRAY_ALPHA:
        out[0] = out[1] = out[2] = in[x * 2 * sample];
        break;
      case PNG_COLOR_TYPE_RGB:
      case PNG_COLOR_TYPE_RGB_ALPHA: {
        const int channels = layout.color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
        const uint8_t* p = in + x * channels * sample;
        out[0] = p[0];
        out[1] = p[sample];
        out[2] = p[2 * sample];
        break;
      }
      case PNG_COLOR_TYPE_PALETTE: {
        const int index = in[x];
        if (index < layout.palette_size) {
          out[0] = layout.palette[index].red;
          out[1] = layout.palette[index].green;
          out[2] = layout.palette[index].blue;
        } else {
          out[0] = out[1] = out[2] = static_cast<uint8_t>(index);
        }
        break;
      }
    }
  }
}

}  // namespace

RgbImage decode_png(const uint8_t* data, size_t size, const std::string& name,
                    const ImageLimits& limits) {
  // Refuse oversized images from IHDR itself, before libpng allocates anything.
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    const auto big_endian = [&](size_t at) {
      return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) |
             (uint32_t{data[at + 2]} << 8) | data[at + 3];
    };
    check_image_size(name, big_endian(16), big_endian(20), limits);
  }
  PngSource source{data, size, 0, {0}};
  PngReader reader;
  std::vector<uint8_t> raw;
  std::vector<png_bytep> rows;
  RgbImage image;
  PngLayout layout;
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, on_error, on_warning);
  if (reader.png == nullptr) fail("{}: cannot create a PNG decoder", name);
  reader.info = png_create_info_struct(reader.png);
  if (reader.info == nullptr) fail("{}: cannot create a PNG decoder", name);
  if (setjmp(png_jmpbuf(reader.png))) {
    fail("{}: corrupt or truncated PNG: {}", name, source.error);
  }
  png_set_user_limits(reader.png, limits.max_side, limits.max_side);
  png_set_read_fn(reader.png, &source, on_read);
  png_read_info(reader.png, reader.info);
  int interlace = 0;
  png_get_IHDR(reader.png, reader.info, &layout.width, &layout.height, &layout.bit_depth,
               &layout.color_type, &interlace, nullptr, nullptr);
  check_image_size(name, layout.width, layout.height, limits);
  if (layout.color_type == PNG_COLOR_TYPE_PALETTE) {
    if (!png_get_PLTE(reader.png, reader.info, &layout.palette, &layout.palette_size)) {
      fail("{}: palette PNG without a PLTE chunk", name);
    }
    png_set_packing(reader.png);
  } else if (layout.color_type == PNG_COLOR_TYPE_GRAY && layout.bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(reader.png);  // 0..3 -> 0, 85, 170, 255 as Pillow's L;2
  }
  png_set_interlace_handling(reader.png);
  png_read_update_info(reader.png, reader.info);
  const size_t row_bytes = png_get_rowbytes(reader.png, reader.info);
  raw.resize(row_bytes * layout.height);
  rows.resize(layout.height);
  for (png_uint_32 y = 0; y < layout.height; ++y) rows[y] = raw.data() + y * row_bytes;
  png_read_image(reader.png, rows.data());
  if (layout.bit_depth < 8) layout.bit_depth = 8;  // unpacked above

  image.width = static_cast<int>(layout.width);
  image.height = static_cast<int>(layout.height);
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  for (png_uint_32 y = 0; y < layout.height; ++y) {
    convert_row(layout, rows[y], image.pixels.data() + static_cast<size_t>(y) * image.width * 3);
  }
  return image;
}

}  // namespace trocr

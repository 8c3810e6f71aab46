// TIFF through libtiff, as Pillow 9 opens the first page and converts it to RGB, for the layouts
// line images come in: gray and bilevel (1, 2, 4, 8 and 16 bits, either photometric; 16 bits
// clip at 255 as Pillow's I;16 -> RGB does; 8-bit gray with alpha, alpha dropped), palettes (1-8 bits; the 16-bit colormap's high
// bytes), RGB with or without a fourth sample (premultiplied alpha undone as Pillow's RGBa
// unpacker does), CMYK (Pillow's cmyk2rgb) and JPEG-compressed YCbCr (RGB out of libjpeg, as
// Pillow asks libtiff for it). Any compression libtiff has. Other layouts (planar, tiled, bit
// orders, floats) are refused by name.
#include <tiffio.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common/check.h"
#include "image/decoders.h"

namespace trocr {
namespace {

struct MemoryFile {
  const uint8_t* data;
  size_t size;
  toff_t offset = 0;
};

tmsize_t read_memory(thandle_t handle, void* out, tmsize_t count) {
  auto* file = static_cast<MemoryFile*>(handle);
  const toff_t left = file->offset < file->size ? file->size - file->offset : 0;
  const tmsize_t n = static_cast<tmsize_t>(std::min<toff_t>(static_cast<toff_t>(count), left));
  std::memcpy(out, file->data + file->offset, static_cast<size_t>(n));
  file->offset += static_cast<toff_t>(n);
  return n;
}
tmsize_t write_nothing(thandle_t, void*, tmsize_t) { return 0; }
toff_t seek_memory(thandle_t handle, toff_t offset, int whence) {
  auto* file = static_cast<MemoryFile*>(handle);
  const toff_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? file->offset : file->size;
  file->offset = base + offset;
  return file->offset;
}
int close_nothing(thandle_t) { return 0; }
toff_t memory_size(thandle_t handle) { return static_cast<MemoryFile*>(handle)->size; }
int map_nothing(thandle_t, void**, toff_t*) { return 0; }
void unmap_nothing(thandle_t, void*, toff_t) {}

// libtiff reports through global handlers; its messages would go to stderr, the error we raise
// names the file instead.
void quiet(const char*, const char*, va_list) {}

struct TiffCloser {
  void operator()(TIFF* tiff) const { TIFFClose(tiff); }
};

template <typename T>
T field(TIFF* tiff, ttag_t tag) {
  T value{};
  TIFFGetFieldDefaulted(tiff, tag, &value);
  return value;
}

}  // namespace

RgbImage decode_tiff(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
  TIFFSetErrorHandler(quiet);
  TIFFSetWarningHandler(quiet);
  MemoryFile file{data, size};
  const std::unique_ptr<TIFF, TiffCloser> tiff(TIFFClientOpen(name.c_str(), "rm", &file, read_memory, write_nothing,
                                                              seek_memory, close_nothing, memory_size, map_nothing,
                                                              unmap_nothing));
  if (!tiff) fail("{}: not a valid TIFF image", name);
  const uint32_t width = field<uint32_t>(tiff.get(), TIFFTAG_IMAGEWIDTH);
  const uint32_t height = field<uint32_t>(tiff.get(), TIFFTAG_IMAGELENGTH);
  check_image_size(name, width, height, limits);
  const int bits = field<uint16_t>(tiff.get(), TIFFTAG_BITSPERSAMPLE);
  const int samples = field<uint16_t>(tiff.get(), TIFFTAG_SAMPLESPERPIXEL);
  const int photometric = field<uint16_t>(tiff.get(), TIFFTAG_PHOTOMETRIC);
  const int compression = field<uint16_t>(tiff.get(), TIFFTAG_COMPRESSION);
  const int format = field<uint16_t>(tiff.get(), TIFFTAG_SAMPLEFORMAT);
  const auto refuse = [&](const char* what) {
    fail("{}: TIFF with {} is not supported (photometric {}, {} samples of {} bits)", name, what, photometric,
         samples, bits);
  };
  if (TIFFIsTiled(tiff.get())) refuse("tiles");
  if (samples > 1 && field<uint16_t>(tiff.get(), TIFFTAG_PLANARCONFIG) != PLANARCONFIG_CONTIG) refuse("planes");
  if (field<uint16_t>(tiff.get(), TIFFTAG_FILLORDER) != FILLORDER_MSB2LSB) refuse("reversed bit order");
  if (format != SAMPLEFORMAT_UINT) refuse("signed or floating-point samples");
  if (photometric == PHOTOMETRIC_YCBCR && compression == COMPRESSION_JPEG) {
    TIFFSetField(tiff.get(), TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);  // as Pillow asks
  } else if (photometric == PHOTOMETRIC_YCBCR) {
    refuse("uncompressed YCbCr");
  }
  // The samples of one pixel, as the row holds them (gray and palettes may pack several per byte).
  const bool gray = photometric == PHOTOMETRIC_MINISWHITE || photometric == PHOTOMETRIC_MINISBLACK;
  const bool palette = photometric == PHOTOMETRIC_PALETTE;
  const bool rgb = photometric == PHOTOMETRIC_RGB || photometric == PHOTOMETRIC_YCBCR;
  const bool cmyk = photometric == PHOTOMETRIC_SEPARATED;
  const bool gray_alpha = photometric == PHOTOMETRIC_MINISBLACK && samples == 2 && bits == 8;
  if ((gray || palette) && !gray_alpha &&
      !(samples == 1 && (bits == 1 || bits == 2 || bits == 4 || bits == 8 || (gray && bits == 16)))) {
    refuse("this gray or palette layout");
  }
  if (photometric == PHOTOMETRIC_MINISWHITE && bits == 16) refuse("16-bit MinIsWhite");
  if (rgb && !(bits == 8 && (samples == 3 || samples == 4))) refuse("this RGB layout");
  if (cmyk && !(bits == 8 && samples == 4 && field<uint16_t>(tiff.get(), TIFFTAG_INKSET) == INKSET_CMYK)) {
    refuse("this ink layout");
  }
  if (!gray && !palette && !rgb && !cmyk) refuse("this photometric interpretation");
  uint16_t extra_count = 0;
  uint16_t* extra_kinds = nullptr;
  const bool has_extra = TIFFGetField(tiff.get(), TIFFTAG_EXTRASAMPLES, &extra_count, &extra_kinds) && extra_count == 1;
  const bool premultiplied = rgb && samples == 4 && has_extra && extra_kinds[0] == EXTRASAMPLE_ASSOCALPHA;
  // Pillow reads gray with alpha only when the alpha is declared unassociated.
  if (gray_alpha && !(has_extra && extra_kinds[0] == EXTRASAMPLE_UNASSALPHA)) refuse("this gray and alpha layout");

  Palette colors = gray_ramp_palette();
  if (palette) {
    uint16_t *red = nullptr, *green = nullptr, *blue = nullptr;
    if (!TIFFGetField(tiff.get(), TIFFTAG_COLORMAP, &red, &green, &blue)) fail("{}: TIFF palette without a colormap", name);
    for (int i = 0; i < (1 << bits); ++i) colors[i] = {uint8_t(red[i] >> 8), uint8_t(green[i] >> 8), uint8_t(blue[i] >> 8)};
  } else if (gray && bits < 16) {
    // Pillow's L;2 and L;4 spread the levels over 0-255; 1-bit is 0 or 255. MinIsWhite inverts.
    const int levels = (1 << bits) - 1;
    for (int i = 0; i <= levels; ++i) {
      const int level = photometric == PHOTOMETRIC_MINISWHITE ? levels - i : i;
      const uint8_t value = static_cast<uint8_t>(level * 255 / levels);
      colors[i] = {value, value, value};
    }
  }

  std::vector<uint8_t> row(static_cast<size_t>(TIFFScanlineSize(tiff.get())));
  const size_t needed = (size_t(width) * samples * bits + 7) / 8;
  if (row.size() < needed) fail("{}: TIFF rows are shorter than their pixels", name);
  RgbImage image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.pixels.resize(size_t(width) * height * 3);
  for (uint32_t y = 0; y < height; ++y) {
    if (TIFFReadScanline(tiff.get(), row.data(), y, 0) < 0) fail("{}: TIFF image data is corrupt or truncated", name);
    uint8_t* out = &image.pixels[size_t(y) * width * 3];
    for (uint32_t x = 0; x < width; ++x, out += 3) {
      if (gray_alpha) {
        out[0] = out[1] = out[2] = row[2 * size_t(x)];
      } else if ((gray || palette) && bits <= 8) {
        std::memcpy(out, colors[packed_sample(row.data(), x, bits)].data(), 3);
      } else if (gray) {  // 16 bits, host order from libtiff; Pillow clips to 255
        uint16_t value;
        std::memcpy(&value, &row[2 * size_t(x)], 2);
        out[0] = out[1] = out[2] = static_cast<uint8_t>(std::min<int>(value, 255));
      } else if (rgb) {
        const uint8_t* pixel = &row[size_t(x) * samples];
        const int alpha = samples == 4 ? pixel[3] : 255;
        for (int c = 0; c < 3; ++c) {
          // Pillow's RGBa unpacker: no color where alpha is 0, c * 255 / alpha elsewhere.
          out[c] = !premultiplied || alpha == 255 ? pixel[c]
                   : alpha == 0                   ? 0
                                                  : static_cast<uint8_t>(std::min(255, pixel[c] * 255 / alpha));
        }
      } else {
        cmyk_to_rgb_as_pillow(&row[size_t(x) * 4], out);
      }
    }
  }
  return image;
}

}  // namespace trocr

// BMP as Pillow 9 opens it and converts it to RGB: the core (12-byte) and the Windows (40, 64,
// 108, 124-byte) headers; 1, 4 and 8-bit palettes (indices past the palette read as gray
// (i, i, i)), 16-bit 5-5-5 and 5-6-5 (each channel scaled as value * 255 / max), 24-bit BGR, and
// 32-bit with the channel layouts Pillow accepts (alpha dropped); rows bottom-up unless the
// height is negative. Pillow's own rules for where the pixels start are followed. Run-length
// compressed BMPs are refused by name (Pillow reads them; trocr-rt does not yet).
#include <array>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "image/decoders.h"

namespace trocr {
namespace {

uint32_t u32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

enum Compression : uint32_t { kRaw = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3 };

// Where R, G and B sit in a pixel of 3 or 4 bytes; Pillow's raw modes for the masks it knows.
struct ByteLayout {
  int r, g, b;
};

}  // namespace

RgbImage decode_bmp(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
  const auto truncated = [&] { fail("{}: BMP file is truncated", name); };
  if (size < 18) truncated();
  size_t offset = u32(data + 10);
  const uint32_t header_size = u32(data + 14);
  if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 && header_size != 124) {
    fail("{}: unsupported BMP header size {}", name, header_size);
  }
  if (size < 14 + size_t(header_size)) truncated();
  const uint8_t* header = data + 18;  // after the header's size field
  int64_t width, height;
  int bits;
  uint32_t compression = kRaw, colors = 0;
  bool top_down = false;
  size_t palette_entry = 4;
  std::array<uint32_t, 4> masks{};  // r, g, b, a
  if (header_size == 12) {
    width = u16(header);
    height = u16(header + 2);
    bits = u16(header + 6);
    palette_entry = 3;
  } else {
    top_down = header[7] == 0xFF;  // a negative height, as Pillow tests it
    width = u32(header);
    height = top_down ? int64_t(1ll << 32) - u32(header + 4) : u32(header + 4);
    bits = u16(header + 10);
    compression = u32(header + 12);
    colors = u32(header + 28);
    if (compression == kBitfields) {
      if (header_size >= 56) {
        for (int i = 0; i < 4; ++i) masks[i] = u32(header + 36 + 4 * i);
      } else {  // the masks follow a 40-byte header
        if (size < 14 + size_t(header_size) + 12) truncated();
        for (int i = 0; i < 3; ++i) masks[i] = u32(data + 14 + header_size + 4 * i);
      }
    }
  }
  if (width <= 0 || height <= 0) fail("{}: BMP image of {}x{} pixels", name, width, height);
  check_image_size(name, width, height, limits);
  if (colors == 0) colors = bits <= 8 ? 1u << bits : 0;
  if (offset == 14 + header_size && bits <= 8) offset += 4 * size_t(colors);
  if (compression == kRle8 || compression == kRle4) fail("{}: run-length compressed BMP is not supported", name);
  if (compression != kRaw && compression != kBitfields) fail("{}: unsupported BMP compression {}", name, compression);
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32) {
    fail("{}: unsupported BMP pixel depth {}", name, bits);
  }

  // Pixels of 16 bits: 5-5-5 unless bitfields say 5-6-5. Of 24 and 32: bytes in this order.
  bool six_bit_green = false;
  ByteLayout layout{2, 1, 0};  // BGR and BGRX
  if (compression == kBitfields) {
    const auto is = [&](uint32_t r, uint32_t g, uint32_t b, uint32_t a) {
      return masks[0] == r && masks[1] == g && masks[2] == b && masks[3] == a;
    };
    const auto rgb_is = [&](uint32_t r, uint32_t g, uint32_t b) { return masks[0] == r && masks[1] == g && masks[2] == b; };
    if (bits == 32 && (is(0xFF0000, 0xFF00, 0xFF, 0) || is(0xFF0000, 0xFF00, 0xFF, 0xFF000000) || is(0, 0, 0, 0))) {
      layout = {2, 1, 0};  // BGRX, BGRA
    } else if (bits == 32 && (is(0xFF000000, 0xFF0000, 0xFF00, 0) || is(0xFF000000, 0xFF0000, 0xFF00, 0xFF))) {
      layout = {3, 2, 1};  // XBGR, ABGR
    } else if (bits == 32 && is(0xFF, 0xFF00, 0xFF0000, 0xFF000000)) {
      layout = {0, 1, 2};  // RGBA
    } else if (bits == 24 && rgb_is(0xFF0000, 0xFF00, 0xFF)) {
      layout = {2, 1, 0};
    } else if (bits == 16 && rgb_is(0xF800, 0x7E0, 0x1F)) {
      six_bit_green = true;
    } else if (!(bits == 16 && rgb_is(0x7C00, 0x3E0, 0x1F))) {
      fail("{}: unsupported BMP bitfields layout", name);
    }
  }

  Palette palette = gray_ramp_palette();
  if (bits <= 8) {
    if (colors == 0 || colors > 65536) fail("{}: unsupported BMP palette size {}", name, colors);
    const size_t palette_start = 14 + header_size + (compression == kBitfields && header_size < 56 ? 12 : 0);
    if (size < palette_start + palette_entry * colors) truncated();
    for (uint32_t i = 0; i < std::min<uint32_t>(colors, 256); ++i) {
      const uint8_t* entry = data + palette_start + palette_entry * i;
      palette[i] = {entry[2], entry[1], entry[0]};
    }
  }

  const size_t stride = ((size_t(bits) * width + 31) / 32) * 4;
  if (offset > size || (size - offset) / stride < size_t(height)) truncated();
  RgbImage image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.pixels.resize(size_t(width) * height * 3);
  for (int64_t row = 0; row < height; ++row) {
    const uint8_t* in = data + offset + size_t(row) * stride;
    uint8_t* out = &image.pixels[size_t(top_down ? row : height - 1 - row) * width * 3];
    for (int64_t x = 0; x < width; ++x, out += 3) {
      if (bits <= 8) {
        std::memcpy(out, palette[packed_sample(in, size_t(x), bits)].data(), 3);
      } else if (bits == 16) {
        const int pixel = u16(in + 2 * x);
        const int green = six_bit_green ? (pixel >> 5) & 63 : (pixel >> 5) & 31;
        out[0] = static_cast<uint8_t>(((pixel >> (six_bit_green ? 11 : 10)) & 31) * 255 / 31);
        out[1] = static_cast<uint8_t>(green * 255 / (six_bit_green ? 63 : 31));
        out[2] = static_cast<uint8_t>((pixel & 31) * 255 / 31);
      } else {
        const uint8_t* pixel = in + x * (bits / 8);
        out[0] = pixel[layout.r];
        out[1] = pixel[layout.g];
        out[2] = pixel[layout.b];
      }
    }
  }
  return image;
}

}  // namespace trocr

// GIF through giflib, as Pillow 9 opens a GIF and converts it to RGB: the first frame only, on
// a canvas the size of the logical screen (grown to hold the frame if it reaches past it),
// filled with the frame's transparent index (or index 0) where the frame does not cover it.
// Indices go through the frame's palette (local, else global); indices past a short palette,
// or every index when there is none, read as gray (i, i, i), as Pillow's palettes and its "L"
// mode do. Transparency itself is dropped, as convert("RGB") drops it.
#include <gif_lib.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common/check.h"
#include "image/decoders.h"

namespace trocr {
namespace {

struct MemoryReader {
  const uint8_t* data;
  size_t size;
  size_t offset = 0;
};

int read_from_memory(GifFileType* gif, GifByteType* out, int count) {
  auto* reader = static_cast<MemoryReader*>(gif->UserData);
  const size_t n = std::min(static_cast<size_t>(count), reader->size - reader->offset);
  std::memcpy(out, reader->data + reader->offset, n);
  reader->offset += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

// The rows of an interlaced frame arrive in four passes.
std::vector<int> row_order(int height, bool interlaced) {
  std::vector<int> rows;
  if (!interlaced) {
    for (int y = 0; y < height; ++y) rows.push_back(y);
    return rows;
  }
  const int starts[] = {0, 4, 2, 1}, steps[] = {8, 8, 4, 2};
  for (int pass = 0; pass < 4; ++pass) {
    for (int y = starts[pass]; y < height; y += steps[pass]) rows.push_back(y);
  }
  return rows;
}

}  // namespace

RgbImage decode_gif(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
  MemoryReader reader{data, size};
  int error = 0;
  const std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&reader, read_from_memory, &error));
  if (!gif) fail("{}: not a valid GIF image ({})", name, GifErrorString(error));
  check_image_size(name, gif->SWidth, gif->SHeight, limits);
  const auto corrupt = [&] { fail("{}: GIF image data is corrupt or truncated", name); };
  int transparent = -1;
  for (;;) {
    GifRecordType record;
    if (DGifGetRecordType(gif.get(), &record) == GIF_ERROR) corrupt();
    if (record == TERMINATE_RECORD_TYPE) fail("{}: the GIF file holds no image", name);
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif.get(), &code, &block) == GIF_ERROR) corrupt();
      // A graphic control block before the frame: its transparent index, when flagged.
      if (code == GRAPHICS_EXT_FUNC_CODE && block != nullptr && block[0] >= 4 && (block[1] & 1)) transparent = block[4];
      while (block != nullptr) {
        if (DGifGetExtensionNext(gif.get(), &block) == GIF_ERROR) corrupt();
      }
      continue;
    }
    if (record != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) corrupt();
    const GifImageDesc& frame = gif->Image;
    const int64_t right = int64_t(frame.Left) + frame.Width, bottom = int64_t(frame.Top) + frame.Height;
    const int64_t width = std::max<int64_t>(gif->SWidth, right), height = std::max<int64_t>(gif->SHeight, bottom);
    check_image_size(name, width, height, limits);
    Palette colors = gray_ramp_palette();
    const ColorMapObject* palette = frame.ColorMap != nullptr ? frame.ColorMap : gif->SColorMap;
    if (palette != nullptr) {
      for (int i = 0; i < std::min(palette->ColorCount, 256); ++i) {
        colors[i] = {palette->Colors[i].Red, palette->Colors[i].Green, palette->Colors[i].Blue};
      }
    }
    std::vector<uint8_t> indices(size_t(width) * height, uint8_t(transparent >= 0 ? transparent : 0));
    std::vector<GifPixelType> line(std::max(1, frame.Width));
    for (const int y : row_order(frame.Height, frame.Interlace)) {
      if (DGifGetLine(gif.get(), line.data(), frame.Width) == GIF_ERROR) corrupt();
      std::memcpy(&indices[size_t(frame.Top + y) * width + frame.Left], line.data(), frame.Width);
    }
    RgbImage image;
    image.width = static_cast<int>(width);
    image.height = static_cast<int>(height);
    image.pixels.resize(indices.size() * 3);
    for (size_t i = 0; i < indices.size(); ++i) std::memcpy(&image.pixels[3 * i], colors[indices[i]].data(), 3);
    return image;
  }
}

}  // namespace trocr

// WebP through libwebp's animation decoder, as Pillow (9.x, with WebP animation support) opens
// every WebP file: the first frame drawn on the canvas in RGBA (its semi-transparent pixels
// blended over the transparent canvas, as Pillow's are), then convert("RGB") keeps R, G and B.
#include <webp/demux.h>

#include <cstring>
#include <memory>

#include "common/check.h"
#include "image/decoders.h"

namespace trocr {

RgbImage decode_webp(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK) fail("{}: not a valid WebP image", name);
  check_image_size(name, features.width, features.height, limits);
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) fail("{}: the WebP decoder could not start", name);
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  const WebPData bytes{data, size};
  const std::unique_ptr<WebPAnimDecoder, decltype(&WebPAnimDecoderDelete)> decoder(
      WebPAnimDecoderNew(&bytes, &options), &WebPAnimDecoderDelete);
  if (!decoder) fail("{}: not a valid WebP image (its container cannot be read)", name);
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info)) fail("{}: not a valid WebP image", name);
  check_image_size(name, info.canvas_width, info.canvas_height, limits);
  uint8_t* frame = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &frame, &timestamp)) {
    fail("{}: WebP image data is corrupt or truncated", name);
  }
  RgbImage image;
  image.width = static_cast<int>(info.canvas_width);
  image.height = static_cast<int>(info.canvas_height);
  image.pixels.resize(size_t(image.width) * image.height * 3);
  for (size_t i = 0; i < size_t(image.width) * image.height; ++i) std::memcpy(&image.pixels[3 * i], &frame[4 * i], 3);
  return image;
}

}  // namespace trocr

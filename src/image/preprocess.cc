// ViTImageProcessor.preprocess on one RGB image. The arithmetic follows the numpy code:
// rescale multiplies in float64 and stores float32; normalize subtracts and divides in float32.
#include <array>

#include "trocr/image.h"

namespace trocr {

RgbImage resize_for_model(RgbImage image, const PreprocessConfig& config) {
  if (!config.do_resize || (image.width == config.width && image.height == config.height)) return image;
  return resize_bilinear(image, config.width, config.height);
}

void preprocess_image(const RgbImage& image, const PreprocessConfig& config, float* chw) {
  const bool resize = config.do_resize && (image.width != config.width || image.height != config.height);
  RgbImage resized_storage;
  if (resize) resized_storage = resize_bilinear(image, config.width, config.height);
  const RgbImage& resized = resize ? resized_storage : image;
  const size_t plane = static_cast<size_t>(resized.width) * resized.height;
  for (int c = 0; c < 3; ++c) {
    // A channel's value depends on its byte alone: the numpy arithmetic once per byte value, then
    // a table lookup per pixel (the same floats, a fraction of the time).
    std::array<float, 256> table;
    const float mean = config.image_mean[c];
    const float std = config.image_std[c];
    for (int value = 0; value < 256; ++value) {
      float pixel = config.do_rescale ? static_cast<float>(value * config.rescale_factor) : static_cast<float>(value);
      if (config.do_normalize) pixel = (pixel - mean) / std;
      table[value] = pixel;
    }
    float* out = chw + c * plane;
    const uint8_t* in = resized.pixels.data() + c;
    for (size_t i = 0; i < plane; ++i) out[i] = table[in[i * 3]];
  }
}

std::vector<float> preprocess_image(const RgbImage& image, const PreprocessConfig& config) {
  const size_t plane = config.do_resize ? static_cast<size_t>(config.width) * config.height
                                        : static_cast<size_t>(image.width) * image.height;
  std::vector<float> chw(plane * 3);
  preprocess_image(image, config, chw.data());
  return chw;
}

}  // namespace trocr

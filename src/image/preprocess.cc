// ViTImageProcessor.preprocess on one RGB image. The arithmetic follows the numpy code:
// rescale multiplies in float64 and stores float32; normalize subtracts and divides in float32.
#include "common/check.h"
#include "trocr/image.h"

namespace trocr {

std::vector<float> preprocess_image(const RgbImage& image, const PreprocessConfig& config) {
  const RgbImage resized =
      config.do_resize ? resize_bilinear(image, config.width, config.height) : image;
  const size_t plane = static_cast<size_t>(resized.width) * resized.height;
  std::vector<float> chw(plane * 3);
  for (int c = 0; c < 3; ++c) {
    const float mean = config.image_mean[c];
    const float std = config.image_std[c];
    float* out = chw.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) {
      const uint8_t value = resized.pixels[i * 3 + c];
      float pixel = config.do_rescale ? static_cast<float>(value * config.rescale_factor)
                                      : static_cast<float>(value);
      if (config.do_normalize) pixel = (pixel - mean) / std;
      out[i] = pixel;
    }
  }
  return chw;
}

}  // namespace trocr

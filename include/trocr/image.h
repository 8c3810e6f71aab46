#pragma once
// Images as HF's TrOCR pipeline sees them: decoded and converted to RGB exactly as PIL's
// Image.convert("RGB") does, resized with PIL's BILINEAR filter, rescaled and normalized.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "trocr/config.h"

namespace trocr {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // row-major, 3 bytes per pixel
};

struct ImageLimits {
  int64_t max_pixels = 64ll << 20;  // refused before any pixel memory is allocated
  int max_side = 65535;
};

// Decodes PNG, JPEG, WebP, GIF (the first frame), BMP or TIFF (the first page) (by content) from memory, converted to
// RGB as Pillow converts each; `name` (usually the path) is used in errors.
RgbImage decode_image(const uint8_t* data, size_t size, const std::string& name,
                      const ImageLimits& limits = {});
RgbImage read_image_file(const std::string& path, const ImageLimits& limits = {});
// Whether a file name ends in .png, .jpg, .jpeg, .webp, .gif, .bmp, .tif or .tiff (any case): what folders are
// scanned for.
bool has_image_extension(const std::string& path);

// A corner of a text box on a page, in pixels (x to the right, y down).
struct Point {
  double x = 0;
  double y = 0;
};
// A text line's box as detectors give it (PaddleOCR, docTR): four corners, clockwise from the
// line's top-left.
using Quadrilateral = std::array<Point, 4>;

// The line inside `quad` warped to an upright rectangle as PaddleOCR's get_rotate_crop_image
// does (max(top, bottom) x max(left, right) pixels, bilinear, the page's edges replicated), and
// turned 90 degrees counter-clockwise when 1.5 times taller than wide (vertical text).
// `name` (the page's path and box number) is used in errors.
RgbImage crop_quadrilateral(const RgbImage& page, const Quadrilateral& quad, const std::string& name,
                            const ImageLimits& limits = {});
// Every box's line, in order; errors name the page and the box ("PAGE, box N").
std::vector<RgbImage> crop_lines(const RgbImage& page, const std::vector<Quadrilateral>& boxes,
                                 const std::string& page_name, const ImageLimits& limits = {});

// PIL's Image.resize(size, BILINEAR) on 8-bit RGB, bit-exact (its antialiased resampling).
RgbImage resize_bilinear(const RgbImage& image, int width, int height);

// ViTImageProcessor's resize alone (the image as is when the config does not resize or it has
// the size already): the costly part of preprocessing, which a server runs per request, before
// batching, so that a batch only normalizes.
RgbImage resize_for_model(RgbImage image, const PreprocessConfig& config);

// ViTImageProcessor: resize, rescale, normalize; returns CHW float32.
std::vector<float> preprocess_image(const RgbImage& image, const PreprocessConfig& config);
// The same into `chw` (3 * config.height * config.width values when the config resizes).
void preprocess_image(const RgbImage& image, const PreprocessConfig& config, float* chw);

}  // namespace trocr

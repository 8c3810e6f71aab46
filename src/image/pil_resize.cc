// Pillow's ImagingResample for 8-bit images with the BILINEAR (triangle) filter: separable,
// horizontal pass first over only the rows the vertical pass needs, each output pixel a
// weighted sum with weights computed in double, normalised, then rounded to 22-bit fixed
// point. Matching every step (the rounding of xmin/xmax, the "+0.5" pixel centres, the
// accumulator start of half a unit) is what makes the result bit-exact.
#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "trocr/image.h"

namespace trocr {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coefficients {
  int kernel_size = 0;
  std::vector<int> bounds;    // per output pixel: first input index, count
  std::vector<int32_t> fixed;  // per output pixel: kernel_size fixed-point weights
};

double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

Coefficients precompute(int in_size, int out_size) {
  constexpr double kSupport = 1.0;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = scale < 1.0 ? 1.0 : scale;
  const double support = kSupport * filter_scale;
  Coefficients result;
  result.kernel_size = static_cast<int>(std::ceil(support)) * 2 + 1;
  result.bounds.resize(2 * static_cast<size_t>(out_size));
  result.fixed.assign(static_cast<size_t>(out_size) * result.kernel_size, 0);
  std::vector<double> weights(result.kernel_size);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double inverse_scale = 1.0 / filter_scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      weights[x] = triangle((x + xmin - center + 0.5) * inverse_scale);
      total += weights[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = total != 0.0 ? weights[x] / total : weights[x];
      result.fixed[static_cast<size_t>(xx) * result.kernel_size + x] = static_cast<int32_t>(
          w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    result.bounds[2 * xx] = xmin;
    result.bounds[2 * xx + 1] = xmax;
  }
  return result;
}

inline uint8_t clip8(int32_t accumulator) {
  const int32_t value = accumulator >> kPrecisionBits;
  return static_cast<uint8_t>(value < 0 ? 0 : value > 255 ? 255 : value);
}

RgbImage resample_horizontal(const RgbImage& in, int out_width, int first_row, int row_count,
                             const Coefficients& coefficients) {
  RgbImage out;
  out.width = out_width;
  out.height = row_count;
  out.pixels.resize(static_cast<size_t>(out_width) * row_count * 3);
  for (int y = 0; y < row_count; ++y) {
    const uint8_t* source = in.pixels.data() + static_cast<size_t>(y + first_row) * in.width * 3;
    uint8_t* target = out.pixels.data() + static_cast<size_t>(y) * out_width * 3;
    for (int xx = 0; xx < out_width; ++xx) {
      const int xmin = coefficients.bounds[2 * xx];
      const int count = coefficients.bounds[2 * xx + 1];
      const int32_t* k = &coefficients.fixed[static_cast<size_t>(xx) * coefficients.kernel_size];
      for (int c = 0; c < 3; ++c) {
        int32_t sum = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < count; ++x) sum += source[(x + xmin) * 3 + c] * k[x];
        target[xx * 3 + c] = clip8(sum);
      }
    }
  }
  return out;
}

RgbImage resample_vertical(const RgbImage& in, int out_height, const Coefficients& coefficients,
                           int row_shift) {
  RgbImage out;
  out.width = in.width;
  out.height = out_height;
  out.pixels.resize(static_cast<size_t>(in.width) * out_height * 3);
  const size_t stride = static_cast<size_t>(in.width) * 3;
  // A whole row of sums at a time, one source row after another: the inner loop runs along
  // contiguous bytes and vectorizes. Integer sums of non-negative terms, so the order is exact.
  std::vector<int32_t> sums(stride);
  for (int yy = 0; yy < out_height; ++yy) {
    const int ymin = coefficients.bounds[2 * yy] - row_shift;
    const int count = coefficients.bounds[2 * yy + 1];
    const int32_t* k = &coefficients.fixed[static_cast<size_t>(yy) * coefficients.kernel_size];
    std::fill(sums.begin(), sums.end(), int32_t{1} << (kPrecisionBits - 1));
    for (int y = 0; y < count; ++y) {
      const uint8_t* source = in.pixels.data() + (y + ymin) * stride;
      const int32_t weight = k[y];
      for (size_t i = 0; i < stride; ++i) sums[i] += source[i] * weight;
    }
    uint8_t* target = out.pixels.data() + yy * stride;
    for (size_t i = 0; i < stride; ++i) target[i] = clip8(sums[i]);
  }
  return out;
}

}  // namespace

RgbImage resize_bilinear(const RgbImage& image, int width, int height) {
  if (width <= 0 || height <= 0) fail("resize: target size {}x{} is empty", width, height);
  if (image.width <= 0 || image.height <= 0) fail("resize: source image is empty");
  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  const Coefficients horizontal = precompute(image.width, width);
  const Coefficients vertical = precompute(image.height, height);
  // Rows of the source that the vertical pass reads.
  const int first_row = vertical.bounds[0];
  const int last_row = vertical.bounds[2 * height - 2] + vertical.bounds[2 * height - 1];
  RgbImage current = image;
  int row_shift = 0;
  if (need_horizontal) {
    current = resample_horizontal(image, width, first_row, last_row - first_row, horizontal);
    row_shift = first_row;
  }
  if (need_vertical) return resample_vertical(current, height, vertical, row_shift);
  return current;
}

}  // namespace trocr

// Text lines cut out of a page by the quadrilaterals a detector gives (PaddleOCR's
// get_rotate_crop_image): the output is max(top, bottom) wide and max(left, right) tall, the
// quadrilateral's corners go to the rectangle's corners (0,0) (w,0) (w,h) (0,h) by a
// perspective transform, pixels are sampled bilinearly with the page's edges replicated, and a
// line 1.5 times taller than wide is turned 90 degrees counter-clockwise (vertical text read
// top to bottom then reads left to right).
#include <algorithm>
#include <array>
#include <cmath>

#include "common/check.h"
#include "trocr/image.h"

namespace trocr {
namespace {

double distance(const Point& a, const Point& b) { return std::hypot(a.x - b.x, a.y - b.y); }

// The perspective transform taking the rectangle's corners to the quadrilateral's, as the
// eight coefficients of [a b c; d e f; g h 1] (a linear system solved by elimination).
std::array<double, 8> rectangle_to_quadrilateral(double width, double height, const Quadrilateral& quad,
                                                 const std::string& name) {
  const std::array<Point, 4> corners = {Point{0, 0}, Point{width, 0}, Point{width, height}, Point{0, height}};
  double system[8][9] = {};
  for (int i = 0; i < 4; ++i) {
    const double x = corners[i].x, y = corners[i].y, u = quad[i].x, v = quad[i].y;
    const double row_u[9] = {x, y, 1, 0, 0, 0, -x * u, -y * u, u};
    const double row_v[9] = {0, 0, 0, x, y, 1, -x * v, -y * v, v};
    std::copy(row_u, row_u + 9, system[2 * i]);
    std::copy(row_v, row_v + 9, system[2 * i + 1]);
  }
  for (int column = 0; column < 8; ++column) {
    int pivot = column;
    for (int row = column + 1; row < 8; ++row) {
      if (std::fabs(system[row][column]) > std::fabs(system[pivot][column])) pivot = row;
    }
    if (std::fabs(system[pivot][column]) < 1e-12) fail("{}: the box's corners are degenerate (collinear)", name);
    std::swap(system[pivot], system[column]);
    for (int row = 0; row < 8; ++row) {
      if (row == column) continue;
      const double factor = system[row][column] / system[column][column];
      for (int k = column; k < 9; ++k) system[row][k] -= factor * system[column][k];
    }
  }
  std::array<double, 8> coefficients;
  for (int i = 0; i < 8; ++i) coefficients[i] = system[i][8] / system[i][i];
  return coefficients;
}

uint8_t bilinear(const RgbImage& page, double x, double y, int channel) {
  // Far outside the page (or not a number, where the mapping's denominator vanishes) reads
  // the replicated edge, as one pixel outside does.
  x = std::isfinite(x) ? std::clamp(x, -1.0, double(page.width)) : -1.0;
  y = std::isfinite(y) ? std::clamp(y, -1.0, double(page.height)) : -1.0;
  const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
  const double fx = x - x0, fy = y - y0;
  const auto at = [&](int px, int py) {
    px = std::clamp(px, 0, page.width - 1);
    py = std::clamp(py, 0, page.height - 1);
    return double(page.pixels[(size_t(py) * page.width + px) * 3 + channel]);
  };
  const double top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
  const double bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
  return static_cast<uint8_t>(std::clamp(std::lround(top * (1 - fy) + bottom * fy), 0l, 255l));
}

RgbImage turned_counter_clockwise(const RgbImage& image) {
  RgbImage turned;
  turned.width = image.height;
  turned.height = image.width;
  turned.pixels.resize(image.pixels.size());
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      // (x, y) goes to column y, row width-1-x.
      const size_t to = (size_t(image.width - 1 - x) * turned.width + y) * 3;
      std::copy_n(&image.pixels[(size_t(y) * image.width + x) * 3], 3, &turned.pixels[to]);
    }
  }
  return turned;
}

}  // namespace

RgbImage crop_quadrilateral(const RgbImage& page, const Quadrilateral& quad, const std::string& name,
                            const ImageLimits& limits) {
  for (const Point& corner : quad) {
    if (!std::isfinite(corner.x) || !std::isfinite(corner.y)) fail("{}: a box corner is not a finite number", name);
  }
  const double width = std::max(distance(quad[0], quad[1]), distance(quad[2], quad[3]));
  const double height = std::max(distance(quad[0], quad[3]), distance(quad[1], quad[2]));
  if (width < 1 || height < 1) fail("{}: the box is {:.1f}x{:.1f} pixels, less than one pixel", name, width, height);
  if (width > limits.max_side || height > limits.max_side) {
    fail("{}: the box would be a {:.0f}x{:.0f} image, more than the limits allow", name, width, height);
  }
  const int64_t columns = static_cast<int64_t>(width), rows = static_cast<int64_t>(height);  // truncated, as PaddleOCR
  if (columns > limits.max_side || rows > limits.max_side || columns * rows > limits.max_pixels) {
    fail("{}: the box would be a {}x{} image, more than the limits allow", name, columns, rows);
  }
  const auto m = rectangle_to_quadrilateral(static_cast<double>(columns), static_cast<double>(rows), quad, name);
  RgbImage line;
  line.width = static_cast<int>(columns);
  line.height = static_cast<int>(rows);
  line.pixels.resize(size_t(columns) * rows * 3);
  for (int y = 0; y < line.height; ++y) {
    for (int x = 0; x < line.width; ++x) {
      const double w = m[6] * x + m[7] * y + 1;
      const double u = (m[0] * x + m[1] * y + m[2]) / w, v = (m[3] * x + m[4] * y + m[5]) / w;
      for (int channel = 0; channel < 3; ++channel) {
        line.pixels[(size_t(y) * line.width + x) * 3 + channel] = bilinear(page, u, v, channel);
      }
    }
  }
  return line.height >= 1.5 * line.width ? turned_counter_clockwise(line) : line;
}

std::vector<RgbImage> crop_lines(const RgbImage& page, const std::vector<Quadrilateral>& boxes,
                                 const std::string& page_name, const ImageLimits& limits) {
  std::vector<RgbImage> lines;
  lines.reserve(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    lines.push_back(crop_quadrilateral(page, boxes[i], fmt::format("{}, box {}", page_name, i), limits));
  }
  return lines;
}

}  // namespace trocr

// Lines cut from a page by detector boxes (image/quadrilateral.cc) and the box lists that name
// them (image/box_list.cc), checked against hand-computed pixels; these also run under the
// sanitizers, which the Python tests of the same feature do not.
#include <cmath>
#include <limits>

#include "image/box_list.h"
#include "support/test_support.h"
#include "trocr/error.h"
#include "trocr/image.h"

namespace trocr::test {
namespace {

// A page whose pixel (x, y) is (x, y, x + y) (mod 256): every cut can be checked by hand.
RgbImage coordinate_page(int width, int height) {
  RgbImage page;
  page.width = width;
  page.height = height;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      page.pixels.push_back(uint8_t(x));
      page.pixels.push_back(uint8_t(y));
      page.pixels.push_back(uint8_t(x + y));
    }
  }
  return page;
}

Quadrilateral rectangle(double x0, double y0, double x1, double y1) {
  return {Point{x0, y0}, Point{x1, y0}, Point{x1, y1}, Point{x0, y1}};
}

TEST(CropQuadrilateral, UprightBoxIsTheSubImage) {
  const RgbImage page = coordinate_page(60, 40);
  const RgbImage line = crop_quadrilateral(page, rectangle(7, 5, 37, 17), "page");
  ASSERT_EQ(line.width, 30);
  ASSERT_EQ(line.height, 12);
  for (int y = 0; y < line.height; ++y) {
    for (int x = 0; x < line.width; ++x) {
      const uint8_t* pixel = &line.pixels[(size_t(y) * line.width + x) * 3];
      EXPECT_EQ(pixel[0], 7 + x);
      EXPECT_EQ(pixel[1], 5 + y);
      EXPECT_EQ(pixel[2], 12 + x + y);
    }
  }
}

TEST(CropQuadrilateral, HalfPixelOffsetsAverageNeighbours) {
  const RgbImage page = coordinate_page(20, 20);
  const RgbImage line = crop_quadrilateral(page, rectangle(2.5, 3, 12.5, 4), "page");
  ASSERT_EQ(line.width, 10);
  ASSERT_EQ(line.height, 1);
  // Red is x: halfway between x and x + 1, rounded half away from zero as lround does.
  for (int x = 0; x < line.width; ++x) EXPECT_EQ(line.pixels[3 * x], 3 + x) << x;
}

TEST(CropQuadrilateral, TallLinesAreTurnedCounterClockwise) {
  const RgbImage page = coordinate_page(40, 60);
  const RgbImage line = crop_quadrilateral(page, rectangle(10, 5, 20, 35), "page");  // 10 wide, 30 tall
  ASSERT_EQ(line.width, 30);
  ASSERT_EQ(line.height, 10);
  // The top of the box comes first, on the left; its right edge ends up on top.
  for (int y = 0; y < line.height; ++y) {
    for (int x = 0; x < line.width; ++x) {
      const uint8_t* pixel = &line.pixels[(size_t(y) * line.width + x) * 3];
      EXPECT_EQ(pixel[0], 10 + (9 - y));
      EXPECT_EQ(pixel[1], 5 + x);
    }
  }
}

TEST(CropQuadrilateral, EdgesAreReplicatedOutsideThePage) {
  const RgbImage page = coordinate_page(10, 10);
  const RgbImage line = crop_quadrilateral(page, rectangle(-5, 2, 15, 3), "page");
  ASSERT_EQ(line.width, 20);
  EXPECT_EQ(line.pixels[0], 0);
  EXPECT_EQ(line.pixels[3 * 19], 9);
}

TEST(CropQuadrilateral, BadBoxesAreRefusedByName) {
  const RgbImage page = coordinate_page(10, 10);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Quadrilateral not_a_number = rectangle(0, 0, nan, 5), thin = rectangle(2, 2, 2.5, 9);
  const Quadrilateral collinear = {Point{0, 0}, Point{5, 5}, Point{10, 10}, Point{5, 5}};
  EXPECT_ERROR_CONTAINS(crop_quadrilateral(page, not_a_number, "p.png, box 3"), "p.png, box 3", "finite");
  EXPECT_ERROR_CONTAINS(crop_quadrilateral(page, thin, "box"), "less than one pixel");
  EXPECT_ERROR_CONTAINS(crop_quadrilateral(page, collinear, "box"), "degenerate");
  ImageLimits limits;
  limits.max_pixels = 100;
  EXPECT_ERROR_CONTAINS(crop_quadrilateral(page, rectangle(0, 0, 20, 20), "box", limits), "limits");
}

TEST(BoxList, ReadsEveryLayoutDetectorsWrite) {
  const auto boxes = parse_box_list(nlohmann::json::parse(R"({"boxes": [
      [[1, 2], [11, 2], [11, 7], [1, 7]],
      [1, 2, 11, 2, 11, 7, 1, 7],
      [1, 2, 11, 7],
      {"transcription": "x", "points": [[1, 2], [11, 2], [11, 7], [1, 7]]}]})"),
                                    "boxes.json");
  ASSERT_EQ(boxes.size(), 4u);
  for (const auto& box : boxes) {
    EXPECT_EQ(box[0].x, 1);
    EXPECT_EQ(box[0].y, 2);
    EXPECT_EQ(box[2].x, 11);
    EXPECT_EQ(box[2].y, 7);
    EXPECT_EQ(box[3].x, 1);
    EXPECT_EQ(box[3].y, 7);
  }
}

TEST(BoxList, RefusesWhatIsNoBox) {
  const auto parse = [](const char* text) { return parse_box_list(nlohmann::json::parse(text), "b.json"); };
  EXPECT_ERROR_CONTAINS(parse(R"({"lines": []})"), "b.json: expected a list of boxes");
  EXPECT_ERROR_CONTAINS(parse(R"([[[1, 2], [3, 4]]])"), "b.json: box 0: expected four");
  EXPECT_ERROR_CONTAINS(parse(R"([[1, 2, 3, 4], [1, 2, 3]])"), "b.json: box 1");
  EXPECT_ERROR_CONTAINS(parse(R"([["a", "b", "c", "d"]])"), "box 0");
}

}  // namespace
}  // namespace trocr::test

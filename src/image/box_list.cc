#include "image/box_list.h"

#include "common/check.h"

namespace trocr {
namespace {

Quadrilateral parse_box(const nlohmann::json& box, const std::string& where) {
  const nlohmann::json& points = box.is_object() && box.contains("points") ? box.at("points") : box;
  std::vector<double> numbers;
  bool pairs = false;  // [x, y] corners: then four of them, never a rectangle's two
  if (points.is_array()) {
    for (const auto& item : points) {
      if (item.is_number()) {
        numbers.push_back(item.get<double>());
      } else if (item.is_array() && item.size() == 2 && item[0].is_number() && item[1].is_number()) {
        numbers.push_back(item[0].get<double>());
        numbers.push_back(item[1].get<double>());
        pairs = true;
      } else {
        numbers.clear();
        break;
      }
    }
  }
  if (numbers.size() == 4 && !pairs) {
    const double x0 = numbers[0], y0 = numbers[1], x1 = numbers[2], y1 = numbers[3];
    return {Point{x0, y0}, Point{x1, y0}, Point{x1, y1}, Point{x0, y1}};
  }
  if (numbers.size() != 8) {
    fail("{}: expected four [x, y] corners, eight numbers or [x0, y0, x1, y1], found {}", where,
         points.dump().substr(0, 80));
  }
  Quadrilateral quad;
  for (int i = 0; i < 4; ++i) quad[i] = {numbers[2 * i], numbers[2 * i + 1]};
  return quad;
}

}  // namespace

std::vector<Quadrilateral> parse_box_list(const nlohmann::json& document, const std::string& name) {
  const nlohmann::json& boxes = document.is_object() && document.contains("boxes") ? document.at("boxes") : document;
  if (!boxes.is_array()) fail("{}: expected a list of boxes (or an object with \"boxes\")", name);
  std::vector<Quadrilateral> quads;
  for (size_t i = 0; i < boxes.size(); ++i) quads.push_back(parse_box(boxes[i], fmt::format("{}: box {}", name, i)));
  return quads;
}

nlohmann::json box_json(const Quadrilateral& box) {
  nlohmann::json corners = nlohmann::json::array();
  for (const Point& corner : box) corners.push_back({corner.x, corner.y});
  return corners;
}

}  // namespace trocr

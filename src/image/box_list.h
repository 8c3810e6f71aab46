#pragma once
// Text boxes on a page as detectors write them, read from JSON: a list (or {"boxes": [...]}) of
// boxes, each four [x, y] corners clockwise from the line's top-left (PaddleOCR, docTR), eight
// numbers, an upright rectangle [x0, y0, x1, y1], or an object with such "points" (PaddleOCR's
// label files).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trocr/image.h"

namespace trocr {

// `name` (usually the file's path) is used in errors, with the box's index.
std::vector<Quadrilateral> parse_box_list(const nlohmann::json& document, const std::string& name);
// A box as results carry it: its four [x, y] corners.
nlohmann::json box_json(const Quadrilateral& box);

}  // namespace trocr

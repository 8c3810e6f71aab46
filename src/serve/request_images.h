#pragma once
// The images of a POST /v1/recognize request: every part of a multipart/form-data body, or the
// whole body when it is sent as an image type or application/octet-stream. A multipart field
// named "boxes" (a JSON list of text boxes, image/box_list.h) makes the one image a page whose
// lines are cut out by those boxes. Problems are answered with the HTTP status that names them
// (400, 413, 415) and a message.
#include <string>
#include <vector>

#include "trocr/image.h"

namespace httplib {
struct Request;
}

namespace trocr {

struct RequestImages {
  std::vector<RgbImage> images;
  std::vector<std::string> names;  // the part's filename (or field name), or "body"
  std::vector<Quadrilateral> boxes;  // with a "boxes" field: the line of each image on the page
  int status = 200;                // anything else: the request is refused with `error`
  std::string error;
};

RequestImages read_request_images(const httplib::Request& request, size_t max_images, const ImageLimits& limits);

}  // namespace trocr

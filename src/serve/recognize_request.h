#pragma once
// What a client asks the service to read, from any of the bodies it accepts:
// - multipart/form-data: one part per image, in upload order; optional fields "boxes" (a JSON
//   box list, image/box_list.h: the one image is a page, one result per box) and "parameters"
//   (JSON generation settings);
// - one image as the whole body (image/png, image/jpeg, image/webp, image/gif, image/bmp,
//   image/tiff or application/octet-stream);
// - application/json: {"images": [base64 or {"data": base64, "name": ...}], "boxes": ...,
//   "parameters": {...}} ("image": base64 for a single one);
// - KServe v2's inference request (parse_kserve_request).
// A request that cannot be served throws HttpError with the status that names the problem.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trocr/error.h"
#include "trocr/image.h"

namespace trocr {

class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status(status) {}
  int status;  // 400, 413 or 415
};

struct ImagePayload {
  std::string name;   // the part's filename or field, "body", or "images[i]"
  std::string bytes;  // encoded image
};

struct RecognizeRequest {
  std::vector<ImagePayload> images;
  nlohmann::json boxes;       // null, or a box list for the one page image
  nlohmann::json parameters;  // null, or HF generation settings for this request
  // KServe v2 only: the request's id (echoed) and the outputs asked for (empty: all).
  std::string id;
  std::vector<std::string> outputs;
};

RecognizeRequest parse_recognize_request(const std::string& content_type, std::string body, size_t max_images);
RecognizeRequest parse_kserve_request(const std::string& body, size_t max_images);

// The request's images decoded (a page with boxes: its lines, cut out), named for errors and
// results; `boxes` receives the page's boxes, if any.
struct RequestImages {
  std::vector<RgbImage> images;
  std::vector<std::string> names;
  std::vector<Quadrilateral> boxes;
};
RequestImages decode_request_images(const RecognizeRequest& request, size_t max_images, const ImageLimits& limits);

}  // namespace trocr

#include "serve/request_images.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>

#include "common/parallel.h"
#include "image/box_list.h"
#include "trocr/error.h"

namespace trocr {
namespace {

struct Payload {
  std::string name;
  const std::string* bytes;
};

RequestImages refuse(int status, std::string error) {
  RequestImages refused;
  refused.status = status;
  refused.error = std::move(error);
  return refused;
}

std::string media_type(const httplib::Request& request) {
  std::string type = request.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  std::transform(type.begin(), type.end(), type.begin(), ::tolower);
  return type;
}

}  // namespace

RequestImages read_request_images(const httplib::Request& request, size_t max_images, const ImageLimits& limits) {
  std::vector<Payload> payloads;
  const std::string* boxes_json = nullptr;
  const std::string type = media_type(request);
  if (type == "multipart/form-data") {
    for (const auto& [field, part] : request.files) {
      if (field == "boxes" && part.filename.empty()) {
        boxes_json = &part.content;
      } else {
        payloads.push_back({part.filename.empty() ? field : part.filename, &part.content});
      }
    }
  } else if (type == "image/png" || type == "image/jpeg" || type == "image/jpg" || type == "image/webp" ||
             type == "image/gif" || type == "image/bmp" || type == "image/tiff" ||
             type == "application/octet-stream") {
    payloads.push_back({"body", &request.body});
  } else {
    return refuse(415, fmt::format("Content-Type '{}' is not accepted: send multipart/form-data with one part per "
                                   "image, or one image as image/png, image/jpeg, image/webp, image/gif, image/bmp, "
                                   "image/tiff or application/octet-stream",
                                   type.empty() ? "(none)" : type));
  }
  if (payloads.empty()) return refuse(400, "the request holds no images");
  if (payloads.size() > max_images) {
    return refuse(413, fmt::format("{} images in one request; at most {} are accepted", payloads.size(), max_images));
  }
  std::vector<Quadrilateral> boxes;
  if (boxes_json != nullptr) {
    if (payloads.size() != 1) return refuse(400, "the boxes field goes with exactly one page image");
    try {
      boxes = parse_box_list(nlohmann::json::parse(*boxes_json), "the boxes field");
    } catch (const nlohmann::json::exception& error) {
      return refuse(400, fmt::format("the boxes field is not JSON: {}", error.what()));
    } catch (const Error& error) {
      return refuse(400, error.what());
    }
    if (boxes.empty()) return refuse(400, "the boxes field holds no boxes");
    if (boxes.size() > max_images) {
      return refuse(413, fmt::format("{} boxes in one request; at most {} are accepted", boxes.size(), max_images));
    }
  }

  RequestImages result;
  result.images.resize(payloads.size());
  std::vector<std::string> errors(payloads.size());
  parallel_for(payloads.size(), [&](size_t i) {
    const std::string& bytes = *payloads[i].bytes;
    if (bytes.empty()) {
      errors[i] = payloads[i].name + ": empty image";
      return;
    }
    try {
      result.images[i] = decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                      payloads[i].name, limits);
    } catch (const Error& error) {
      errors[i] = error.what();
    }
  }, std::min<unsigned>(4, unsigned(payloads.size())));
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (!errors[i].empty()) return refuse(400, fmt::format("image {}: {}", i, errors[i]));
    result.names.push_back(payloads[i].name);
  }
  if (boxes.empty()) return result;
  // The page's lines take its place, one image per box.
  RequestImages lines;
  try {
    lines.images = crop_lines(result.images.front(), boxes, result.names.front(), limits);
  } catch (const Error& error) {
    return refuse(400, error.what());
  }
  for (size_t i = 0; i < boxes.size(); ++i) lines.names.push_back(fmt::format("{}#box{}", result.names.front(), i));
  lines.boxes = std::move(boxes);
  return lines;
}

}  // namespace trocr

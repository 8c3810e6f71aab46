#include "serve/recognize_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "common/parallel.h"
#include "image/box_list.h"
#include "serve/base64.h"
#include "serve/multipart.h"

namespace trocr {
namespace {

constexpr const char* kImageTypes[] = {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif",
                                       "image/bmp", "image/tiff", "application/octet-stream"};

[[noreturn]] void refuse(int status, const std::string& message) { throw HttpError(status, message); }

nlohmann::json parse_json(std::string_view text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    refuse(400, fmt::format("{} is not JSON: {}", what, error.what()));
  }
}

void check_count(size_t count, size_t max_images) {
  if (count == 0) refuse(400, "the request holds no images");
  if (count > max_images) refuse(413, fmt::format("{} images in one request; at most {} are accepted", count, max_images));
}

std::string base64_bytes(const nlohmann::json& value, const std::string& name) {
  if (!value.is_string()) refuse(400, fmt::format("{}: expected a base64 string, found {}", name, value.type_name()));
  try {
    return decode_base64(value.get_ref<const std::string&>(), name);
  } catch (const Error& error) {
    refuse(400, error.what());
  }
}

RecognizeRequest from_multipart(const std::string& content_type, std::string_view body, size_t max_images) {
  std::vector<FormPart> parts;
  try {
    parts = parse_multipart(body, content_type, 1 << 16);  // the image count is checked below (413)
  } catch (const Error& error) {
    refuse(400, error.what());
  }
  RecognizeRequest request;
  for (const FormPart& part : parts) {
    if (part.filename.empty() && part.name == "boxes") {
      request.boxes = parse_json(part.content, "the boxes field");
    } else if (part.filename.empty() && part.name == "parameters") {
      request.parameters = parse_json(part.content, "the parameters field");
    } else {
      check_count(request.images.size() + 1, max_images);
      request.images.push_back({part.filename.empty() ? part.name : part.filename, std::string(part.content)});
    }
  }
  return request;
}

RecognizeRequest from_json(std::string_view body, size_t max_images) {
  const nlohmann::json document = parse_json(body, "the request body");
  if (!document.is_object()) refuse(400, "the JSON body must be an object with \"images\"");
  RecognizeRequest request;
  for (const auto& [key, value] : document.items()) {
    if (key == "image") {
      request.images.push_back({"image", base64_bytes(value, "image")});
    } else if (key == "images") {
      if (!value.is_array()) refuse(400, "images: expected a list of base64 strings or {\"data\", \"name\"} objects");
      check_count(value.size(), max_images);
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string name = fmt::format("images[{}]", i);
        const nlohmann::json& item = value[i];
        if (item.is_object()) {
          if (!item.contains("data")) refuse(400, name + ": the object has no \"data\"");
          const auto label = item.find("name");
          request.images.push_back({label != item.end() && label->is_string() ? label->get<std::string>() : name,
                                    base64_bytes(item["data"], name + ".data")});
        } else {
          request.images.push_back({name, base64_bytes(item, name)});
        }
      }
    } else if (key == "boxes") {
      request.boxes = value;
    } else if (key == "parameters") {
      request.parameters = value;
    } else {
      refuse(400, fmt::format("the JSON body has an unknown field '{}' (known: image, images, boxes, parameters)", key));
    }
  }
  return request;
}

// The strings of a BYTES tensor's data, flattened in row-major order as KServe v2 allows.
void flatten_strings(const nlohmann::json& data, std::vector<const nlohmann::json*>& out, size_t max_images) {
  if (data.is_array()) {
    for (const auto& item : data) flatten_strings(item, out, max_images);
    return;
  }
  check_count(out.size() + 1, max_images);
  out.push_back(&data);
}

}  // namespace

static RecognizeRequest read_kserve_request(const nlohmann::json& document, size_t max_images);

RecognizeRequest parse_recognize_request(const std::string& content_type, std::string body, size_t max_images) {
  const std::string type = media_type(content_type);
  RecognizeRequest request;
  if (type == "multipart/form-data") {
    request = from_multipart(content_type, body, max_images);
  } else if (type == "application/json") {
    try {
      request = from_json(body, max_images);
    } catch (const nlohmann::json::exception& error) {  // a field of the wrong type
      refuse(400, fmt::format("the JSON body is not as expected: {}", error.what()));
    }
  } else if (std::find(std::begin(kImageTypes), std::end(kImageTypes), type) != std::end(kImageTypes)) {
    request.images.push_back({"body", std::move(body)});
  } else {
    refuse(415, fmt::format("Content-Type '{}' is not accepted: send multipart/form-data with one part per image, "
                            "application/json with base64 images, or one image as image/png, image/jpeg, "
                            "image/webp, image/gif, image/bmp, image/tiff or application/octet-stream",
                            type.empty() ? "(none)" : type));
  }
  check_count(request.images.size(), max_images);
  return request;
}

RecognizeRequest parse_kserve_request(const std::string& body, size_t max_images) {
  try {
    return read_kserve_request(parse_json(body, "the inference request"), max_images);
  } catch (const nlohmann::json::exception& error) {  // a field of the wrong type
    refuse(400, fmt::format("the inference request does not follow KServe v2: {}", error.what()));
  }
}

static RecognizeRequest read_kserve_request(const nlohmann::json& document, size_t max_images) {
  if (!document.is_object()) refuse(400, "the inference request must be a JSON object with \"inputs\"");
  RecognizeRequest request;
  if (const auto id = document.find("id"); id != document.end()) {
    if (!id->is_string()) refuse(400, "id: expected a string");
    request.id = id->get<std::string>();
  }
  if (const auto parameters = document.find("parameters"); parameters != document.end()) {
    if (!parameters->is_object()) refuse(400, "parameters: expected an object");
    request.parameters = nlohmann::json::object();
    // Triton's own request parameters are not generation settings.
    for (const auto& [key, value] : parameters->items()) {
      if (key != "binary_data_output" && key != "sequence_id" && key != "priority" && key != "timeout") {
        request.parameters[key] = value;
      }
    }
  }
  const auto inputs = document.find("inputs");
  if (inputs == document.end() || !inputs->is_array() || inputs->size() != 1) {
    refuse(400, "inputs: expected a list with exactly one BYTES tensor of base64 images");
  }
  const nlohmann::json& input = inputs->front();
  if (!input.is_object() || input.value("datatype", "") != "BYTES") {
    refuse(400, "inputs[0]: expected a tensor with \"datatype\": \"BYTES\" holding base64 images");
  }
  const std::string name = input.value("name", std::string("inputs[0]"));
  const auto data = input.find("data");
  if (data == input.end()) refuse(400, fmt::format("{}: no \"data\" (the binary tensor extension is not supported)", name));
  std::vector<const nlohmann::json*> items;
  flatten_strings(*data, items, max_images);
  const auto shape = input.find("shape");
  if (shape == input.end() || !shape->is_array()) refuse(400, fmt::format("{}: no \"shape\"", name));
  uint64_t elements = 1;
  for (const auto& extent : *shape) {
    if (!extent.is_number_integer() || extent.get<int64_t>() < 0) refuse(400, fmt::format("{}: a bad shape {}", name, shape->dump()));
    elements *= std::min<uint64_t>(extent.get<uint64_t>(), 1u << 20);
  }
  if (elements != items.size()) {
    refuse(400, fmt::format("{}: shape {} holds {} elements but data has {}", name, shape->dump(), elements, items.size()));
  }
  check_count(items.size(), max_images);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string label = fmt::format("{}[{}]", name, i);
    request.images.push_back({label, base64_bytes(*items[i], label)});
  }
  if (const auto outputs = document.find("outputs"); outputs != document.end()) {
    if (!outputs->is_array()) refuse(400, "outputs: expected a list of {\"name\": ...}");
    for (const auto& output : *outputs) {
      if (!output.is_object() || !output.contains("name") || !output["name"].is_string()) {
        refuse(400, "outputs: each needs a \"name\"");
      }
      const auto parameters = output.find("parameters");
      if (parameters != output.end() && parameters->is_object() && parameters->value("binary_data", false)) {
        refuse(400, "outputs: binary_data is not supported; outputs come as JSON");
      }
      request.outputs.push_back(output["name"].get<std::string>());
    }
  }
  return request;
}

RequestImages decode_request_images(const RecognizeRequest& request, size_t max_images, const ImageLimits& limits) {
  std::vector<Quadrilateral> boxes;
  if (!request.boxes.is_null()) {
    if (request.images.size() != 1) refuse(400, "boxes go with exactly one page image");
    try {
      boxes = parse_box_list(request.boxes, "boxes");
    } catch (const Error& error) {
      refuse(400, error.what());
    }
    if (boxes.empty()) refuse(400, "boxes: the list holds no boxes");
    if (boxes.size() > max_images) {
      refuse(413, fmt::format("{} boxes in one request; at most {} are accepted", boxes.size(), max_images));
    }
  }
  RequestImages result;
  result.images.resize(request.images.size());
  std::vector<std::optional<std::string>> errors(request.images.size());  // a message may be ""
  parallel_for(request.images.size(), [&](size_t i) {
    const ImagePayload& payload = request.images[i];
    if (payload.bytes.empty()) {
      errors[i] = payload.name + ": empty image";
      return;
    }
    try {
      result.images[i] = decode_image(reinterpret_cast<const uint8_t*>(payload.bytes.data()), payload.bytes.size(),
                                      payload.name, limits);
    } catch (const Error& error) {
      errors[i] = error.what();
    }
  }, std::min<unsigned>(4, unsigned(request.images.size())));
  for (size_t i = 0; i < request.images.size(); ++i) {
    if (errors[i]) refuse(400, fmt::format("image {}: {}", i, *errors[i]));
    result.names.push_back(request.images[i].name);
  }
  if (boxes.empty()) return result;
  RequestImages lines;  // the page's lines take its place, one image per box
  try {
    lines.images = crop_lines(result.images.front(), boxes, result.names.front(), limits);
  } catch (const Error& error) {
    refuse(400, error.what());
  }
  for (size_t i = 0; i < boxes.size(); ++i) lines.names.push_back(fmt::format("{}#box{}", result.names.front(), i));
  lines.boxes = std::move(boxes);
  return lines;
}

}  // namespace trocr

// The OpenAPI 3 description of OcrService's routes, served at /openapi.json. tests/serve checks
// that every route here answers as described.
#include <nlohmann/json.hpp>

#include "serve/ocr_service.h"

namespace trocr {
namespace {

using json = nlohmann::json;

json reference(const char* schema) { return {{"$ref", std::string("#/components/schemas/") + schema}}; }

json json_content(const char* schema) { return {{"application/json", {{"schema", reference(schema)}}}}; }

json answer(const char* description, const char* schema) {
  return {{"description", description}, {"content", json_content(schema)}};
}

json text_answer(const char* description) {
  return {{"description", description}, {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}};
}

json get_operation(const char* summary, json responses) {
  return {{"get", {{"summary", summary}, {"responses", std::move(responses)}}}};
}

json schemas() {
  const json generation = {
      {"type", "object"},
      {"description", "HF generate() settings for this request, within the server's --request-max-beams and --request-max-new-tokens"},
      {"properties",
       {{"num_beams", {{"type", "integer"}, {"minimum", 1}}},
        {"max_length", {{"type", "integer"}, {"minimum", 1}}},
        {"max_new_tokens", {{"type", "integer"}, {"minimum", 1}}},
        {"min_length", {{"type", "integer"}, {"minimum", 0}}},
        {"no_repeat_ngram_size", {{"type", "integer"}, {"minimum", 0}}},
        {"length_penalty", {{"type", "number"}}},
        {"num_return_sequences", {{"type", "integer"}, {"minimum", 1}}},
        {"early_stopping", {{"oneOf", {{{"type", "boolean"}}, {{"type", "string"}, {"enum", {"never"}}}}}}}}},
      {"additionalProperties", false}};
  const json candidate = {{"type", "object"},
                          {"properties",
                           {{"text", {{"type", "string"}}},
                            {"confidence", {{"type", "number"}}},
                            {"min_token_probability", {{"type", "number"}}},
                            {"score", {{"type", "number"}}}}}};
  json result = candidate;
  result["properties"]["name"] = {{"type", "string"}};
  result["properties"]["batch_size"] = {{"type", "integer"}};
  result["properties"]["timings_ms"] = {{"type", "object"}};
  result["properties"]["box"] = {{"type", "array"}, {"items", {{"type", "array"}, {"items", {{"type", "number"}}}}}};
  result["properties"]["candidates"] = {{"type", "array"}, {"items", reference("Candidate")}};
  result["required"] = {"name", "text", "confidence", "score"};
  const json tensor = {{"type", "object"},
                       {"required", {"name", "shape", "datatype", "data"}},
                       {"properties",
                        {{"name", {{"type", "string"}}},
                         {"shape", {{"type", "array"}, {"items", {{"type", "integer"}}}}},
                         {"datatype", {{"type", "string"}}},
                         {"parameters", {{"type", "object"}}},
                         {"data", {{"type", "array"}}}}}};
  const json metadata_tensor = {{"type", "object"},
                                {"properties",
                                 {{"name", {{"type", "string"}}},
                                  {"datatype", {{"type", "string"}}},
                                  {"shape", {{"type", "array"}, {"items", {{"type", "integer"}}}}}}}};
  const json string = {{"type", "string"}}, base64 = {{"type", "string"}, {"format", "byte"}};
  auto list_of = [](json items) { return json{{"type", "array"}, {"items", std::move(items)}}; };
  auto object = [](json properties) { return json{{"type", "object"}, {"properties", std::move(properties)}}; };
  json recognize_response = object({{"results", list_of(reference("Result"))}, {"timings_ms", {{"type", "object"}}}});
  recognize_response["required"] = {"results"};
  json named_image = object({{"data", base64}, {"name", string}});
  named_image["required"] = {"data"};
  json recognize_json = object({{"images", list_of({{"oneOf", {base64, named_image}}})},
                                {"image", base64},
                                {"boxes", {{"description", "text boxes on the one page image: four [x, y] corners, "
                                                           "eight numbers or [x0, y0, x1, y1] each"}}},
                                {"parameters", reference("GenerationSettings")}});
  recognize_json["additionalProperties"] = false;
  json recognize_multipart = object({{"image", list_of({{"type", "string"}, {"format", "binary"}})},
                                     {"boxes", {{"type", "string"}, {"description", "a JSON box list for the one page image"}}},
                                     {"parameters", {{"type", "string"}, {"description", "JSON generation settings"}}}});
  recognize_multipart["description"] = "one file part per image, in upload order";
  json infer_request = object({{"id", string},
                               {"parameters", reference("GenerationSettings")},
                               {"inputs", list_of(reference("InferTensor"))},
                               {"outputs", list_of(object({{"name", {{"type", "string"}, {"enum", {"text", "confidence", "score"}}}}}))}});
  infer_request["properties"]["inputs"]["minItems"] = 1;
  infer_request["properties"]["inputs"]["maxItems"] = 1;
  infer_request["required"] = {"inputs"};
  json infer_response = object({{"model_name", string}, {"model_version", string}, {"id", string},
                                {"outputs", list_of(reference("InferTensor"))}});
  infer_response["required"] = {"model_name", "outputs"};
  json error = object({{"error", string}});
  error["required"] = {"error"};
  return {{"Error", error},
          {"GenerationSettings", generation},
          {"Candidate", candidate},
          {"Result", result},
          {"RecognizeResponse", recognize_response},
          {"RecognizeJson", recognize_json},
          {"RecognizeMultipart", recognize_multipart},
          {"InferTensor", tensor},
          {"InferRequest", infer_request},
          {"InferResponse", infer_response},
          {"ServerMetadata", object({{"name", string}, {"version", string}, {"extensions", {{"type", "array"}}}})},
          {"ModelMetadata", object({{"name", string}, {"versions", list_of(string)}, {"platform", string},
                                    {"inputs", list_of(metadata_tensor)}, {"outputs", list_of(metadata_tensor)}})},
          {"Live", object({{"live", {{"type", "boolean"}}}})},
          {"Ready", object({{"ready", {{"type", "boolean"}}}, {"name", string}})}};
}

}  // namespace

std::string openapi_document(const std::string& model_name) {
  const json bad_request = answer("the request cannot be read; the message says why", "Error");
  const json too_large = answer("too many images, or the body or header is too large", "Error");
  const json busy = answer("the queue is full, or the service is shutting down", "Error");
  json recognize_responses = {{"200", answer("one result per image (per box, with boxes), in the request's order", "RecognizeResponse")},
                              {"400", bad_request},
                              {"413", too_large},
                              {"415", answer("a Content-Type that is not accepted", "Error")},
                              {"503", busy}};
  json image_body = {{"schema", {{"type", "string"}, {"format", "binary"}}}};
  json recognize_content = {{"multipart/form-data", {{"schema", reference("RecognizeMultipart")}}},
                            {"application/json", {{"schema", reference("RecognizeJson")}}}};
  for (const char* type : {"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff",
                           "application/octet-stream"}) {
    recognize_content[type] = image_body;
  }
  const std::string model = "/v2/models/" + model_name;
  json paths = {
      {"/v1/recognize",
       {{"post",
         {{"summary", "Recognize the text of line images"},
          {"requestBody", {{"required", true}, {"content", recognize_content}}},
          {"responses", recognize_responses}}}}},
      {"/healthz", get_operation("Liveness", {{"200", text_answer("the process serves HTTP")}})},
      {"/readyz", get_operation("Readiness", {{"200", text_answer("the model is loaded and requests are taken")},
                                              {"503", answer("starting or shutting down", "Error")}})},
      {"/metrics", get_operation("Prometheus metrics", {{"200", text_answer("text exposition format 0.0.4")}})},
      {"/openapi.json", get_operation("This document", {{"200", {{"description", "OpenAPI 3"}, {"content", {{"application/json", json::object()}}}}}})},
      {"/v2", get_operation("KServe v2 server metadata", {{"200", answer("server metadata", "ServerMetadata")}})},
      {"/v2/health/live", get_operation("KServe v2 liveness", {{"200", answer("live", "Live")}})},
      {"/v2/health/ready", get_operation("KServe v2 readiness", {{"200", answer("ready", "Ready")}, {"400", answer("not ready", "Ready")}})},
      {model, get_operation("KServe v2 model metadata", {{"200", answer("model metadata", "ModelMetadata")}})},
      {model + "/ready", get_operation("KServe v2 model readiness", {{"200", answer("ready", "Ready")}, {"400", answer("not ready", "Ready")}})},
      {model + "/infer",
       {{"post",
         {{"summary", "KServe v2 inference: a BYTES tensor of base64 images in, texts out"},
          {"requestBody", {{"required", true}, {"content", json_content("InferRequest")}}},
          {"responses",
           {{"200", answer("text (BYTES), confidence and score (FP32), one per image", "InferResponse")},
            {"400", bad_request},
            {"413", too_large},
            {"503", busy}}}}}}}};
  const json document = {{"openapi", "3.0.3"},
                         {"info", {{"title", "trocr-rt"}, {"version", TROCR_VERSION}, {"description", "TrOCR text recognition"}}},
                         {"paths", std::move(paths)},
                         {"components", {{"schemas", schemas()}}}};
  return document.dump(2) + "\n";
}

}  // namespace trocr

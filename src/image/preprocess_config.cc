// The image processor settings: preprocessor_config.json (what older transformers and the
// published TrOCR checkpoints have), or the "image_processor" object of processor_config.json
// (what transformers 5 writes).
#include <sys/stat.h>

#include "common/check.h"
#include "formats/json_file.h"
#include "trocr/config.h"

namespace trocr {
namespace {

std::vector<float> parse_triple(const JsonFields& fields, const char* key,
                                const std::vector<float>& fallback) {
  if (!fields.has(key)) return fallback;
  const auto& value = fields.at(key);
  std::vector<float> result;
  if (value.is_number()) {
    result.assign(3, value.get<float>());
  } else if (value.is_array() && value.size() == 3) {
    for (const auto& item : value) {
      if (!item.is_number()) fail("{} must hold numbers, found {}", fields.where(key), value.dump());
      result.push_back(item.get<float>());
    }
  } else {
    fail("{} must be a number or a list of 3 numbers, found {}", fields.where(key), value.dump());
  }
  return result;
}

PreprocessConfig parse(const JsonFields& fields, const std::string& source) {
  PreprocessConfig config;
  config.source = source;
  const std::string type = fields.get_string("image_processor_type",
                                             fields.get_string("feature_extractor_type", ""));
  if (!type.empty() && type.rfind("ViTImageProcessor", 0) != 0 &&
      type.rfind("ViTFeatureExtractor", 0) != 0 && type.rfind("DeiTImageProcessor", 0) != 0 &&
      type.rfind("DeiTFeatureExtractor", 0) != 0) {
    fail("{} is '{}'; trocr-rt implements ViTImageProcessor's pipeline",
         fields.where("image_processor_type"), type);
  }
  if (fields.get_bool("do_center_crop", false)) {
    fail("{}: center cropping (DeiT's classification pipeline) is not used by TrOCR and not "
         "supported",
         fields.where("do_center_crop"));
  }
  config.do_resize = fields.get_bool("do_resize", true);
  if (fields.has("size")) {
    const auto& size = fields.at("size");
    if (size.is_number_integer()) {
      config.height = config.width = size.get<int>();
    } else {
      const JsonFields size_fields = fields.object("size");
      if (size_fields.has("shortest_edge") || size_fields.has("longest_edge")) {
        fail("{}: only {{height, width}} sizes are supported", fields.where("size"));
      }
      config.height = size_fields.require_positive_int("height");
      config.width = size_fields.require_positive_int("width");
    }
    if (config.height <= 0 || config.width <= 0 || config.height > 8192 || config.width > 8192) {
      fail("{} is out of range", fields.where("size"));
    }
  }
  const int resample = fields.get_int("resample", 2);
  if (resample != static_cast<int>(ResampleFilter::Bilinear)) {
    fail("{} is {}; trocr-rt implements PIL's BILINEAR (2), which TrOCR uses",
         fields.where("resample"), resample);
  }
  config.do_rescale = fields.get_bool("do_rescale", true);
  config.rescale_factor = fields.get_number("rescale_factor", 1.0 / 255.0);
  config.do_normalize = fields.get_bool("do_normalize", true);
  config.image_mean = parse_triple(fields, "image_mean", config.image_mean);
  config.image_std = parse_triple(fields, "image_std", config.image_std);
  for (float value : config.image_std) {
    if (value == 0.0f) fail("{} contains a zero", fields.where("image_std"));
  }
  return config;
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

PreprocessConfig load_preprocess_config(const std::string& model_dir) {
  const std::string legacy = model_dir + "/preprocessor_config.json";
  if (exists(legacy)) {
    const nlohmann::json json = read_json_file(legacy);
    return parse(JsonFields(json, legacy), legacy);
  }
  const std::string processor = model_dir + "/processor_config.json";
  if (exists(processor)) {
    const nlohmann::json json = read_json_file(processor);
    const JsonFields fields(json, processor);
    return parse(fields.object("image_processor"), processor);
  }
  fail("{}: no preprocessor_config.json or processor_config.json (the image processor settings)",
       model_dir);
}

}  // namespace trocr

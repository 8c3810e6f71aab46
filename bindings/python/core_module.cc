// trocr_rt._core: the engine for Python. It takes images already reduced to what the engine
// reads (file paths, encoded bytes, or HxWx3 uint8 RGB arrays; trocr_rt/images.py converts PIL
// images and other arrays as Pillow converts them), and returns plain tuples that
// trocr_rt/recognizer.py turns into result objects.
//
// Threads: every call releases the GIL for decoding and inference. Decoding runs in the calling
// thread, in parallel with anything; one engine runs one recognition at a time (a mutex, taken
// after the GIL is released): calls from several Python threads queue in the order the mutex
// grants them, and each gets exactly its own answers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <utility>
#include <filesystem>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "image/box_list.h"
#include "model/generation_overrides.h"
#include "trocr/error.h"
#include "trocr/image.h"
#include "trocr/recognizer.h"

namespace py = pybind11;

namespace trocr {
namespace {

// What the engine reads an image from, decoded or not, copied out of Python objects while the
// GIL is held.
struct EncodedImage {
  std::string name;
  std::string bytes;
};
struct FilePath {
  std::string path;
};
using ImageInput = std::variant<FilePath, EncodedImage, RgbImage>;

[[noreturn]] void raise_file_not_found(const std::string& message) {
  PyErr_SetString(PyExc_FileNotFoundError, message.c_str());
  throw py::error_already_set();
}

// One of the objects trocr_rt/images.py hands over: str (a path), bytes (an encoded image) or a
// C-contiguous uint8 array of shape HxWx3. `index` names it in errors.
ImageInput take_input(const py::handle& item, size_t index) {
  if (py::isinstance<py::str>(item)) {
    const std::string path = item.cast<std::string>();
    if (!std::filesystem::exists(path)) raise_file_not_found(path + ": no such file");
    return FilePath{path};
  }
  if (py::isinstance<py::bytes>(item)) {
    return EncodedImage{"image " + std::to_string(index) + " (bytes)", item.cast<std::string>()};
  }
  const auto array = py::array_t<uint8_t, py::array::c_style>::ensure(item);
  if (!array || array.ndim() != 3 || array.shape(2) != 3) {
    throw py::value_error("image " + std::to_string(index) + ": expected a path, bytes or an HxWx3 uint8 array");
  }
  RgbImage image;
  image.height = static_cast<int>(array.shape(0));
  image.width = static_cast<int>(array.shape(1));
  image.pixels.assign(array.data(), array.data() + array.size());
  return image;
}

// Python values as JSON (lists, tuples, numpy arrays and scalars, dicts, numbers, strings), for
// the readers that take JSON: boxes come in as the CLI and the server read them.
nlohmann::json to_json(const py::handle& value) {
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::hasattr(value, "tolist")) return to_json(value.attr("tolist")());  // numpy
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<int64_t>();
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::dict>(value)) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, item] : value.cast<py::dict>()) object[py::str(key).cast<std::string>()] = to_json(item);
    return object;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    nlohmann::json array = nlohmann::json::array();
    for (const py::handle item : value) array.push_back(to_json(item));
    return array;
  }
  throw py::type_error("expected numbers, lists or dicts, got " + py::str(value.get_type()).cast<std::string>());
}

RgbImage decode(ImageInput& input) {
  if (auto* file = std::get_if<FilePath>(&input)) return read_image_file(file->path);
  if (auto* encoded = std::get_if<EncodedImage>(&input)) {
    return decode_image(reinterpret_cast<const uint8_t*>(encoded->bytes.data()), encoded->bytes.size(),
                        encoded->name);
  }
  return std::move(std::get<RgbImage>(input));
}

// Images decoded outside the engine's lock: a caller decodes the next batch while the engine
// runs this one (recognize_files does).
struct DecodedImages {
  std::vector<RgbImage> images;
};

DecodedImages decode_all(const py::list& items) {
  std::vector<ImageInput> inputs;
  inputs.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) inputs.push_back(take_input(items[i], i));
  DecodedImages decoded;
  const py::gil_scoped_release unlocked;
  decoded.images.reserve(inputs.size());
  for (auto& input : inputs) decoded.images.push_back(decode(input));
  return decoded;
}

// The lines of one page cut out by `boxes` (any layout image/box_list.h reads), and each box's
// four corners.
std::pair<DecodedImages, std::vector<Quadrilateral>> crop_boxes(const py::object& page_item, const py::object& boxes) {
  ImageInput page_input = take_input(page_item, 0);
  const std::vector<Quadrilateral> quads = parse_box_list(to_json(boxes), "boxes");
  const std::string name = std::holds_alternative<FilePath>(page_input) ? std::get<FilePath>(page_input).path
                                                                         : std::string("the page");
  DecodedImages lines;
  const py::gil_scoped_release unlocked;
  lines.images = crop_lines(decode(page_input), quads, name);
  return {std::move(lines), quads};
}

// HF's generate() keyword arguments on top of the checkpoint's settings, as HF applies them.
GenerationConfig with_overrides(const GenerationConfig& config, const py::dict& overrides) {
  for (const auto& [key, value] : overrides) {
    const std::string name = py::str(key);
    const auto& known = generation_override_names();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw py::type_error("recognize() got an unexpected keyword argument '" + name + "'");
    }
  }
  return apply_generation_overrides(config, to_json(overrides), "generation settings");
}

py::dict generation_dict(const GenerationConfig& config) {
  py::dict settings;
  settings["num_beams"] = config.num_beams;
  settings["max_length"] = config.resolved_max_length();
  settings["min_length"] = config.resolved_min_length();
  settings["no_repeat_ngram_size"] = config.no_repeat_ngram_size;
  settings["length_penalty"] = config.length_penalty;
  settings["early_stopping"] = std::string(early_stopping_name(config.early_stopping));
  settings["num_return_sequences"] = config.num_return_sequences;
  settings["decoder_start_token_id"] = config.tokens.decoder_start;
  settings["eos_token_id"] = config.tokens.eos;
  settings["pad_token_id"] = config.tokens.pad;
  settings["source"] = config.source;
  return settings;
}

py::dict model_dict(const ModelConfig& config) {
  const EncoderConfig& e = config.encoder;
  const DecoderConfig& d = config.decoder;
  py::dict encoder, decoder;
  encoder["type"] = e.type == EncoderType::Deit ? "deit" : "vit";
  encoder["image_size"] = py::make_tuple(e.image_height, e.image_width);
  encoder["patch_size"] = e.patch_size;
  encoder["hidden_size"] = e.hidden_size;
  encoder["num_layers"] = e.num_layers;
  encoder["num_heads"] = e.num_heads;
  encoder["intermediate_size"] = e.intermediate_size;
  encoder["activation"] = activation_name(e.activation);
  decoder["vocab_size"] = d.vocab_size;
  decoder["d_model"] = d.d_model;
  decoder["num_layers"] = d.num_layers;
  decoder["num_heads"] = d.num_heads;
  decoder["ffn_dim"] = d.ffn_dim;
  decoder["activation"] = activation_name(d.activation);
  decoder["max_position_embeddings"] = d.max_position_embeddings;
  py::dict model;
  model["encoder"] = encoder;
  model["decoder"] = decoder;
  return model;
}

class Engine {
 public:
  Engine(const std::string& model_dir, const std::string& device, const std::string& dtype, int batch_size,
         int threads) {
    if (!std::filesystem::is_directory(model_dir)) {
      raise_file_not_found(model_dir + ": no such model directory");
    }
    EngineOptions options;
    options.device = device;
    options.dtype = dtype;
    options.batch_size = batch_size;
    options.threads = threads;
    const py::gil_scoped_release unlocked;
    recognizer_ = std::make_unique<Recognizer>(model_dir, options);
  }

  // One list of candidates per image, best first: (text, ids, score, mean, min probability).
  using Candidate = std::tuple<std::string, std::vector<int>, float, float, float>;
  std::vector<std::vector<Candidate>> recognize(const DecodedImages& decoded, const py::dict& overrides) {
    const GenerationConfig generation = with_overrides(recognizer_->default_generation(), overrides);
    std::vector<Recognition> recognized;
    if (!decoded.images.empty()) {
      const py::gil_scoped_release unlocked;
      const std::lock_guard<std::mutex> one_call_at_a_time(mutex_);
      recognized = recognizer_->recognize(decoded.images, generation);
    }
    std::vector<std::vector<Candidate>> results;
    for (const Recognition& recognition : recognized) {
      std::vector<Candidate> candidates;
      for (const TextCandidate& c : recognition.candidates) {
        candidates.emplace_back(c.text, c.ids, c.score, c.mean_token_probability, c.min_token_probability);
      }
      results.push_back(std::move(candidates));
    }
    return results;
  }

  // The pixels the model reads for one image: float32 [3, height, width].
  py::array_t<float> preprocess(const py::object& item) {
    ImageInput input = take_input(item, 0);
    std::vector<float> pixels;
    size_t image_width = 0;
    {
      const py::gil_scoped_release unlocked;
      const RgbImage image = decode(input);
      image_width = image.width;
      pixels = preprocess_image(image, recognizer_->preprocess_config());
    }
    const PreprocessConfig& config = recognizer_->preprocess_config();
    const size_t height = config.do_resize ? config.height : pixels.size() / 3 / image_width;
    const size_t width = config.do_resize ? config.width : image_width;
    py::array_t<float> array({size_t{3}, height, width});
    std::copy(pixels.begin(), pixels.end(), array.mutable_data());
    return array;
  }

  py::dict generation() const { return generation_dict(recognizer_->default_generation()); }
  py::dict generation_with(const py::dict& overrides) const {
    return generation_dict(with_overrides(recognizer_->default_generation(), overrides));
  }
  py::dict model() const { return model_dict(recognizer_->model_config()); }
  size_t images_per_call() const { return recognizer_->images_per_call(); }

 private:
  std::unique_ptr<Recognizer> recognizer_;
  std::mutex mutex_;
};

}  // namespace
}  // namespace trocr

PYBIND11_MODULE(_core, module) {
  module.doc() = "trocr-rt's engine (use the trocr_rt package, not this module)";
  // The engine's one error type; its message names the file or setting and what is wrong.
  py::register_exception<trocr::Error>(module, "Error", PyExc_ValueError);
  py::class_<trocr::DecodedImages>(module, "DecodedImages")
      .def("__len__", [](const trocr::DecodedImages& decoded) { return decoded.images.size(); })
      .def("arrays", [](const trocr::DecodedImages& decoded) {
        py::list arrays;
        for (const trocr::RgbImage& image : decoded.images) {
          py::array_t<uint8_t> array({image.height, image.width, 3});
          std::copy(image.pixels.begin(), image.pixels.end(), array.mutable_data());
          arrays.append(array);
        }
        return arrays;
      });
  module.def("decode", &trocr::decode_all, py::arg("images"));
  // Returns (lines, corners): the corners as [(x, y)] * 4 per box.
  module.def("crop_boxes", [](const py::object& page, const py::object& boxes) {
    auto [lines, quads] = trocr::crop_boxes(page, boxes);
    py::list corners;
    for (const trocr::Quadrilateral& quad : quads) {
      py::list box;
      for (const trocr::Point& corner : quad) box.append(py::make_tuple(corner.x, corner.y));
      corners.append(box);
    }
    return py::make_tuple(std::move(lines), corners);
  }, py::arg("page"), py::arg("boxes"));
  py::class_<trocr::Engine>(module, "Engine")
      .def(py::init<const std::string&, const std::string&, const std::string&, int, int>(), py::arg("model_dir"),
           py::arg("device"), py::arg("dtype"), py::arg("batch_size"), py::arg("threads"))
      .def("recognize", &trocr::Engine::recognize, py::arg("images"), py::arg("overrides"))
      .def("recognize", [](trocr::Engine& engine, const py::list& items, const py::dict& overrides) {
        return engine.recognize(trocr::decode_all(items), overrides);
      })
      .def("preprocess", &trocr::Engine::preprocess, py::arg("image"))
      .def("generation", &trocr::Engine::generation)
      .def("generation_with", &trocr::Engine::generation_with, py::arg("overrides"))
      .def("model", &trocr::Engine::model)
      .def("images_per_call", &trocr::Engine::images_per_call);
  module.def("has_image_extension", &trocr::has_image_extension, py::arg("path"));
#ifdef TROCR_VERSION
  module.attr("__version__") = TROCR_VERSION;
#endif
}

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

#include <array>
#include <filesystem>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

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

[[noreturn]] void raise_file_not_found(const std::string& path) {
  PyErr_SetString(PyExc_FileNotFoundError, (path + ": no such file").c_str());
  throw py::error_already_set();
}

// Takes the objects trocr_rt/images.py hands over: str (a path), bytes (an encoded image) or a
// C-contiguous uint8 array of shape HxWx3.
std::vector<ImageInput> take_inputs(const py::list& items) {
  std::vector<ImageInput> inputs;
  inputs.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const py::handle item = items[i];
    if (py::isinstance<py::str>(item)) {
      const std::string path = item.cast<std::string>();
      if (!std::filesystem::exists(path)) raise_file_not_found(path);
      inputs.emplace_back(FilePath{path});
    } else if (py::isinstance<py::bytes>(item)) {
      inputs.emplace_back(EncodedImage{"image " + std::to_string(i) + " (bytes)", item.cast<std::string>()});
    } else {
      const auto array = py::array_t<uint8_t, py::array::c_style>::ensure(item);
      if (!array || array.ndim() != 3 || array.shape(2) != 3) {
        throw py::value_error("image " + std::to_string(i) + ": expected a path, bytes or an HxWx3 uint8 array");
      }
      RgbImage image;
      image.height = static_cast<int>(array.shape(0));
      image.width = static_cast<int>(array.shape(1));
      image.pixels.assign(array.data(), array.data() + array.size());
      inputs.emplace_back(std::move(image));
    }
  }
  return inputs;
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
  std::vector<ImageInput> inputs = take_inputs(items);
  DecodedImages decoded;
  const py::gil_scoped_release unlocked;
  decoded.images.reserve(inputs.size());
  for (auto& input : inputs) decoded.images.push_back(decode(input));
  return decoded;
}

// The lines inside `boxes` (each four (x, y) corners, clockwise from the top-left) of one page.
DecodedImages crop_boxes(const py::object& page_item, const std::vector<std::array<std::array<double, 2>, 4>>& boxes) {
  py::list items;
  items.append(page_item);
  std::vector<ImageInput> inputs = take_inputs(items);
  DecodedImages lines;
  const py::gil_scoped_release unlocked;
  const RgbImage page = decode(inputs.front());
  const std::string name = std::holds_alternative<FilePath>(inputs.front()) ? std::get<FilePath>(inputs.front()).path
                                                                              : std::string("the page");
  for (size_t i = 0; i < boxes.size(); ++i) {
    Quadrilateral quad;
    for (int corner = 0; corner < 4; ++corner) quad[corner] = {boxes[i][corner][0], boxes[i][corner][1]};
    lines.images.push_back(crop_quadrilateral(page, quad, name + ", box " + std::to_string(i)));
  }
  return lines;
}

// HF's generate() keyword arguments on top of the checkpoint's settings, as HF applies them.
GenerationConfig with_overrides(GenerationConfig config, const py::dict& overrides) {
  for (const auto& [key, value] : overrides) {
    const std::string name = key.cast<std::string>();
    if (name == "num_beams") {
      config.num_beams = value.cast<int>();
    } else if (name == "max_length") {
      config.max_length = value.cast<int>();
    } else if (name == "max_new_tokens") {
      config.max_new_tokens = value.cast<int>();
    } else if (name == "min_length") {
      config.min_length = value.cast<int>();
    } else if (name == "no_repeat_ngram_size") {
      config.no_repeat_ngram_size = value.cast<int>();
    } else if (name == "length_penalty") {
      config.length_penalty = value.cast<double>();
    } else if (name == "num_return_sequences") {
      config.num_return_sequences = value.cast<int>();
    } else if (name == "early_stopping") {
      if (py::isinstance<py::bool_>(value)) {
        config.early_stopping = value.cast<bool>() ? EarlyStopping::True : EarlyStopping::False;
      } else if (py::isinstance<py::str>(value) && value.cast<std::string>() == "never") {
        config.early_stopping = EarlyStopping::Never;
      } else {
        throw py::value_error("early_stopping must be True, False or \"never\"");
      }
    } else {
      throw py::type_error("recognize() got an unexpected keyword argument '" + name + "'");
    }
  }
  return config;
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
      PyErr_SetString(PyExc_FileNotFoundError, (model_dir + ": no such model directory").c_str());
      throw py::error_already_set();
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
    py::list items;
    items.append(item);
    std::vector<ImageInput> inputs = take_inputs(items);
    std::vector<float> pixels;
    size_t image_width = 0;
    {
      const py::gil_scoped_release unlocked;
      const RgbImage image = decode(inputs.front());
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
  module.def("crop_boxes", &trocr::crop_boxes, py::arg("page"), py::arg("boxes"));
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

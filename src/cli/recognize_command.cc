// trocr recognize --model DIR [options] IMAGE|DIR...: one line per image (path, text,
// confidence), or JSON lines with --json. Unreadable images are reported and skipped; the exit
// code is 1 if any image failed. With --boxes FILE.json PAGE: one line per text box of the page.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/image_files.h"
#include "common/check.h"
#include "formats/json_file.h"
#include "image/box_list.h"
#include "trocr/recognizer.h"

namespace trocr::cli {
namespace {

struct RecognizeArguments {
  EngineFlags engine;
  GenerationFlags generation;
  std::vector<std::string> inputs;
  std::string list_file;
  std::string boxes_file;
  bool json = false;
};

// `box`: the line's corners on its page (--boxes), printed with it.
void print_result(const std::string& path, const Recognition& recognition, bool as_json,
                  const Quadrilateral* box = nullptr, size_t box_index = 0) {
  const TextCandidate& best = recognition.best();
  if (!as_json) {
    const std::string where = box != nullptr ? fmt::format("{}#box{}", path, box_index) : path;
    fmt::print("{}\t{}\t{:.4f}\n", where, best.text, best.mean_token_probability);
    return;
  }
  nlohmann::json line = {{"path", path},
                         {"text", best.text},
                         {"score", best.score},
                         {"mean_token_probability", best.mean_token_probability},
                         {"min_token_probability", best.min_token_probability},
                         {"ids", best.ids}};
  if (box != nullptr) {
    line["box_index"] = box_index;
    line["box"] = box_json(*box);
  }
  if (recognition.candidates.size() > 1) {
    for (const auto& candidate : recognition.candidates) {
      line["candidates"].push_back({{"text", candidate.text}, {"score", candidate.score}, {"ids", candidate.ids}});
    }
  }
  fmt::print("{}\n", line.dump());
}

// The lines of one page, cut out by the boxes of a JSON file (image/box_list.h).
int run_boxes(const RecognizeArguments& arguments, const Recognizer& recognizer, const GenerationConfig& generation) {
  if (arguments.inputs.size() != 1 || !arguments.list_file.empty()) {
    fail("--boxes {}: give exactly one page image", arguments.boxes_file);
  }
  const std::string& page_path = arguments.inputs.front();
  const std::vector<Quadrilateral> boxes = parse_box_list(read_json_file(arguments.boxes_file), arguments.boxes_file);
  const RgbImage page = page_path == kStandardInput ? read_standard_input_image() : read_image_file(page_path);
  const auto results = recognizer.recognize(crop_lines(page, boxes, page_path), generation);
  for (size_t i = 0; i < results.size(); ++i) print_result(page_path, results[i], arguments.json, &boxes[i], i);
  return 0;
}

int run(const RecognizeArguments& arguments) {
  const Recognizer recognizer(arguments.engine.model_dir, arguments.engine.options());
  const GenerationConfig generation = arguments.generation.apply_to(recognizer.default_generation());
  if (!arguments.boxes_file.empty()) return run_boxes(arguments, recognizer, generation);
  const std::vector<std::string> paths = expand_image_inputs(arguments.inputs, arguments.list_file);
  PrefetchingImageReader reader(paths, recognizer.images_per_call());
  int failures = 0;
  while (!reader.done()) {
    DecodedImages decoded = reader.next();
    for (size_t i = 0; i < decoded.paths.size(); ++i) {
      if (decoded.errors[i].empty()) continue;
      ++failures;
      std::fprintf(stderr, "trocr: error: %s\n", decoded.errors[i].c_str());
      if (arguments.json) {
        fmt::print("{}\n", nlohmann::json{{"path", decoded.paths[i]}, {"error", decoded.errors[i]}}.dump());
      }
    }
    std::vector<size_t> positions;
    const std::vector<RgbImage> images = decoded.take_readable(positions);
    if (images.empty()) continue;
    const auto results = recognizer.recognize(images, generation);
    for (size_t i = 0; i < results.size(); ++i) print_result(decoded.paths[positions[i]], results[i], arguments.json);
    std::fflush(stdout);
  }
  return failures == 0 ? 0 : kExitError;
}

}  // namespace

Action add_recognize_command(CLI::App& app) {
  auto* command = app.add_subcommand("recognize", "Read the text of text-line images");
  auto arguments = std::make_shared<RecognizeArguments>();
  add_engine_flags(*command, arguments->engine);
  command->add_option("IMAGES", arguments->inputs, "Image files, folders (read recursively) or - (an image from standard input)");
  command->add_option("-l,--list", arguments->list_file, "A file with one image path per line (relative paths from its folder, as in trocr eval)");
  add_generation_flags(*command, arguments->generation);
  command->add_option("--boxes", arguments->boxes_file,
                      "A JSON list of text boxes on the one page image given: each four [x, y] corners clockwise from "
                      "the line's top-left (PaddleOCR, docTR) or [x0, y0, x1, y1]; one result per box");
  command->add_flag("--json", arguments->json, "One JSON object per line");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

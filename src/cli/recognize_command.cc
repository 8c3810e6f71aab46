// trocr recognize --model DIR [options] IMAGE|DIR...: one line per image (path, text,
// confidence), or JSON lines with --json. Unreadable images are reported and skipped; the exit
// code is 1 if any image failed.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/image_files.h"
#include "trocr/recognizer.h"

namespace trocr::cli {
namespace {

struct RecognizeArguments {
  EngineFlags engine;
  GenerationFlags generation;
  std::vector<std::string> inputs;
  std::string list_file;
  bool json = false;
};

void print_result(const std::string& path, const Recognition& recognition, bool as_json) {
  const TextCandidate& best = recognition.best();
  if (!as_json) {
    fmt::print("{}\t{}\t{:.4f}\n", path, best.text, best.mean_token_probability);
    return;
  }
  nlohmann::json line = {{"path", path},
                         {"text", best.text},
                         {"score", best.score},
                         {"mean_token_probability", best.mean_token_probability},
                         {"min_token_probability", best.min_token_probability},
                         {"ids", best.ids}};
  if (recognition.candidates.size() > 1) {
    for (const auto& candidate : recognition.candidates) {
      line["candidates"].push_back({{"text", candidate.text}, {"score", candidate.score}, {"ids", candidate.ids}});
    }
  }
  fmt::print("{}\n", line.dump());
}

int run(const RecognizeArguments& arguments) {
  const Recognizer recognizer(arguments.engine.model_dir, arguments.engine.options());
  const GenerationConfig generation = arguments.generation.apply_to(recognizer.default_generation());
  const std::vector<std::string> paths = expand_image_inputs(arguments.inputs, arguments.list_file);
  PrefetchingImageReader reader(paths, arguments.engine.batch);
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
  command->add_flag("--json", arguments->json, "One JSON object per line");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

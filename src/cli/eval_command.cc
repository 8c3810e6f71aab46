// trocr eval --model DIR DATASET: recognizes a labeled set (a trocr-chinese-layout folder or a
// `path<TAB>label` list) and reports character error rate, line accuracy and speed; --json for
// a machine-readable summary, --mistakes for the lines that were read wrong.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/image_files.h"
#include "cli/progress_bar.h"
#include "evaluation/labeled_dataset.h"
#include "evaluation/text_metrics.h"
#include "trocr/recognizer.h"

namespace trocr::cli {
namespace {

struct EvalArguments {
  EngineFlags engine;
  GenerationFlags generation;
  std::string dataset;
  bool json = false;
  bool mistakes = false;
};

struct Mistake {
  std::string path, label, text, error;
  size_t edits = 0;
};

int run(const EvalArguments& arguments) {
  const std::vector<LabeledImage> dataset = read_labeled_dataset(arguments.dataset);
  const Recognizer recognizer(arguments.engine.model_dir, arguments.engine.options());
  const GenerationConfig generation = arguments.generation.apply_to(recognizer.default_generation());
  std::vector<std::string> paths;
  for (const auto& item : dataset) paths.push_back(item.path);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  double model_seconds = 0.0;
  TextScore score;
  std::vector<Mistake> mistakes;
  size_t unreadable = 0, done = 0;
  ProgressBar progress(dataset.size());
  PrefetchingImageReader reader(paths, recognizer.images_per_call());
  while (!reader.done()) {
    DecodedImages batch = reader.next();
    for (size_t i = 0; i < batch.paths.size(); ++i) {
      if (batch.errors[i].empty()) continue;
      // An unreadable image counts as read wrong (nothing recognized), and is reported.
      const size_t row = done + i;
      ++unreadable;
      std::fprintf(stderr, "trocr: error: %s\n", batch.errors[i].c_str());
      const size_t edits = score.add("", dataset[row].label);
      mistakes.push_back({dataset[row].path, dataset[row].label, "", batch.errors[i], edits});
    }
    std::vector<size_t> positions;
    const std::vector<RgbImage> images = batch.take_readable(positions);
    if (!images.empty()) {
      const auto model_start = Clock::now();
      const std::vector<Recognition> results = recognizer.recognize(images, generation);
      model_seconds += std::chrono::duration<double>(Clock::now() - model_start).count();
      for (size_t i = 0; i < results.size(); ++i) {
        const LabeledImage& item = dataset[done + positions[i]];
        const std::string& text = results[i].best().text;
        const size_t edits = score.add(text, item.label);
        if (edits > 0) mistakes.push_back({item.path, item.label, text, "", edits});
      }
    }
    done += batch.paths.size();
    progress.update(done);
  }
  progress.finish();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const size_t count = dataset.size();

  if (arguments.json) {
    nlohmann::json summary = {
        {"model", arguments.engine.model_dir},
        {"dataset", arguments.dataset},
        {"device", arguments.engine.device},
        {"dtype", arguments.engine.dtype},
        {"batch", arguments.engine.batch},
        {"beams", generation.num_beams},
        {"images", count},
        {"unreadable", unreadable},
        {"characters", score.reference_characters()},
        {"edits", score.edits()},
        {"cer", score.character_error_rate()},
        {"exact_lines", score.exact_lines()},
        {"line_accuracy", score.line_accuracy()},
        {"seconds", seconds},
        {"model_seconds", model_seconds},
        {"ms_per_image", 1000.0 * seconds / count},
        {"images_per_s", count / seconds},
    };
    if (arguments.mistakes) {
      summary["mistakes"] = nlohmann::json::array();
      for (const Mistake& mistake : mistakes) {
        nlohmann::json line = {{"path", mistake.path}, {"label", mistake.label}, {"text", mistake.text},
                               {"edits", mistake.edits}};
        if (!mistake.error.empty()) line["error"] = mistake.error;
        summary["mistakes"].push_back(line);
      }
    }
    fmt::print("{}\n", summary.dump(1));
  } else {
    if (arguments.mistakes) {
      for (const Mistake& mistake : mistakes) {
        fmt::print("{}\t{}\t{}\t{}\n", mistake.path, mistake.label,
                   mistake.error.empty() ? mistake.text : "(unreadable)", mistake.edits);
      }
    }
    fmt::print("images          {}{}\n", count, unreadable ? fmt::format(" ({} unreadable)", unreadable) : "");
    fmt::print("CER             {:.4f} ({} edits / {} characters)\n", score.character_error_rate(),
               score.edits(), score.reference_characters());
    fmt::print("line accuracy   {:.4f} ({} / {} lines exact)\n", score.line_accuracy(), score.exact_lines(),
               score.lines());
    fmt::print("time            {:.2f} s, {:.2f} ms/image, {:.1f} images/s ({} {}, batch {}, beams {})\n",
               seconds, 1000.0 * seconds / count, count / seconds, arguments.engine.device,
               arguments.engine.dtype, arguments.engine.batch, generation.num_beams);
  }
  return unreadable == 0 ? 0 : kExitError;
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto* command = app.add_subcommand("eval", "Score recognition on a labeled dataset (CER, line accuracy, speed)");
  auto arguments = std::make_shared<EvalArguments>();
  add_engine_flags(*command, arguments->engine);
  command->add_option("DATASET", arguments->dataset,
                      "A folder of NAME.jpg + NAME.txt pairs, or a file of `path<TAB>label` lines")
      ->required();
  add_generation_flags(*command, arguments->generation);
  command->add_flag("--json", arguments->json, "Print the summary as JSON");
  command->add_flag("--mistakes", arguments->mistakes, "Also list the lines read wrong (path, label, text, edits)");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

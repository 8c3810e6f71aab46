// trocr recognize --model DIR [options] IMAGE|DIR...: one line per image (path, text,
// confidence), or JSON lines with --json. Unreadable images are reported and skipped; the exit
// code is 1 if any image failed.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "common/check.h"
#include "common/parallel.h"
#include "trocr/error.h"
#include "trocr/recognizer.h"

namespace trocr::cli {
namespace {

struct RecognizeArguments {
  std::string model_dir;
  std::vector<std::string> inputs;
  std::string list_file;
  std::string device = "cpu";
  std::string dtype = "fp32";
  int batch = 8;
  int threads = 0;
  bool json = false;
  std::optional<int> beams, max_length, max_new_tokens, min_length, no_repeat_ngram_size,
      num_return_sequences;
  std::optional<double> length_penalty;
  std::string early_stopping;
};

bool is_image_name(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

// Files as given; directories expanded to their images (sorted); list files read line by line.
std::vector<std::string> collect_images(const RecognizeArguments& arguments) {
  std::vector<std::string> inputs = arguments.inputs;
  if (!arguments.list_file.empty()) {
    std::ifstream list(arguments.list_file);
    if (!list) fail("{}: cannot open the image list", arguments.list_file);
    for (std::string line; std::getline(list, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto tab = line.find('\t');  // "path<TAB>label" lists work too
      if (tab != std::string::npos) line.resize(tab);
      if (!line.empty()) inputs.push_back(line);
    }
  }
  std::vector<std::string> images;
  for (const std::string& input : inputs) {
    if (std::filesystem::is_directory(input)) {
      std::vector<std::string> found;
      for (const auto& entry : std::filesystem::directory_iterator(input)) {
        if (entry.is_regular_file() && is_image_name(entry.path())) found.push_back(entry.path().string());
      }
      std::sort(found.begin(), found.end());
      images.insert(images.end(), found.begin(), found.end());
    } else {
      images.push_back(input);
    }
  }
  if (images.empty()) fail("no images given (pass files, directories or -l LIST)");
  return images;
}

GenerationConfig settings(const Recognizer& recognizer, const RecognizeArguments& arguments) {
  GenerationConfig generation = recognizer.default_generation();
  if (arguments.beams) generation.num_beams = *arguments.beams;
  if (arguments.max_length) {
    generation.max_length = *arguments.max_length;
    generation.max_new_tokens.reset();
  }
  if (arguments.max_new_tokens) generation.max_new_tokens = *arguments.max_new_tokens;
  if (arguments.min_length) generation.min_length = *arguments.min_length;
  if (arguments.no_repeat_ngram_size) generation.no_repeat_ngram_size = *arguments.no_repeat_ngram_size;
  if (arguments.length_penalty) generation.length_penalty = *arguments.length_penalty;
  if (arguments.num_return_sequences) generation.num_return_sequences = *arguments.num_return_sequences;
  if (arguments.early_stopping == "true") generation.early_stopping = EarlyStopping::True;
  if (arguments.early_stopping == "false") generation.early_stopping = EarlyStopping::False;
  if (arguments.early_stopping == "never") generation.early_stopping = EarlyStopping::Never;
  if (generation.num_return_sequences > generation.num_beams) {
    generation.num_return_sequences = std::min(generation.num_return_sequences, generation.num_beams);
  }
  return generation;
}

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
  EngineOptions options;
  options.device = arguments.device;
  options.dtype = arguments.dtype;
  options.batch_size = arguments.batch;
  options.threads = arguments.threads;
  const Recognizer recognizer(arguments.model_dir, options);
  const GenerationConfig generation = settings(recognizer, arguments);
  const std::vector<std::string> paths = collect_images(arguments);
  int failures = 0;
  for (size_t first = 0; first < paths.size(); first += arguments.batch) {
    // Decode the batch's files on all cores; a file that fails is reported and skipped.
    const size_t count = std::min(paths.size(), first + arguments.batch) - first;
    std::vector<RgbImage> decoded(count);
    std::vector<std::string> errors(count);
    parallel_for(count, [&](size_t i) {
      try {
        decoded[i] = read_image_file(paths[first + i]);
      } catch (const Error& error) {
        errors[i] = error.what();
      }
    });
    std::vector<RgbImage> images;
    std::vector<std::string> names;
    for (size_t i = 0; i < count; ++i) {
      if (errors[i].empty()) {
        images.push_back(std::move(decoded[i]));
        names.push_back(paths[first + i]);
        continue;
      }
      ++failures;
      std::fprintf(stderr, "trocr: error: %s\n", errors[i].c_str());
      if (arguments.json) fmt::print("{}\n", nlohmann::json{{"path", paths[first + i]}, {"error", errors[i]}}.dump());
    }
    if (images.empty()) continue;
    const auto results = recognizer.recognize(images, generation);
    for (size_t i = 0; i < results.size(); ++i) print_result(names[i], results[i], arguments.json);
    std::fflush(stdout);
  }
  return failures == 0 ? 0 : kExitError;
}

}  // namespace

Action add_recognize_command(CLI::App& app) {
  auto* command = app.add_subcommand("recognize", "Read the text of text-line images");
  auto arguments = std::make_shared<RecognizeArguments>();
  command->add_option("--model,-m", arguments->model_dir, "HF checkpoint directory")->required();
  command->add_option("IMAGES", arguments->inputs, "Image files or directories of images");
  command->add_option("-l,--list", arguments->list_file, "A file with one image path per line");
  command->add_option("--device", arguments->device, "cpu, cuda or cuda:N")->capture_default_str();
  command->add_option("--dtype", arguments->dtype, "fp32, or on CUDA fp16 / bf16")
      ->capture_default_str()->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  command->add_option("--batch", arguments->batch, "Images per batch")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  command->add_option("--threads", arguments->threads, "CPU threads (0: OpenBLAS default)")
      ->check(CLI::Range(0, 1024));
  command->add_option("--beams", arguments->beams, "num_beams (default: the checkpoint's)")
      ->check(CLI::Range(1, 64));
  command->add_option("--max-length", arguments->max_length, "max_length, start token included")
      ->check(CLI::Range(2, 100000));
  command->add_option("--max-new-tokens", arguments->max_new_tokens, "max_new_tokens")
      ->check(CLI::Range(1, 100000));
  command->add_option("--min-length", arguments->min_length, "min_length")->check(CLI::Range(0, 100000));
  command->add_option("--no-repeat-ngram-size", arguments->no_repeat_ngram_size, "no_repeat_ngram_size")
      ->check(CLI::Range(0, 1000));
  command->add_option("--length-penalty", arguments->length_penalty, "length_penalty");
  command->add_option("--early-stopping", arguments->early_stopping, "true, false or never")
      ->check(CLI::IsMember({"true", "false", "never"}));
  command->add_option("--num-return-sequences", arguments->num_return_sequences,
                      "Candidates per image (beam search)")->check(CLI::Range(1, 64));
  command->add_flag("--json", arguments->json, "One JSON object per line");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

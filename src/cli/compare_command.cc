// trocr compare --model DIR --reference REF [--device cuda --dtype fp16]: error statistics of
// this engine against a reference HF computed (python/hf_reference.py writes REF.safetensors and
// REF.json): encoder output and teacher-forced logits (absolute and relative error: max, mean,
// median), and the share of generated sequences identical to HF's for each generate() setting.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/check.h"
#include "evaluation/error_statistics.h"
#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "trocr/recognizer.h"

namespace trocr::cli {
namespace {

struct CompareArguments {
  EngineFlags engine;
  std::string reference;  // path prefix of REF.safetensors + REF.json
  std::string name = "model";
  std::string json_path;
};

std::vector<float> reference_tensor(const Checkpoint& reference, const std::string& name) {
  const TensorRecord* record = reference.find(name);
  if (record == nullptr) fail("{}: no tensor {}", reference.path, name);
  if (record->dtype != DType::F32) fail("{}: tensor {} is not float32", reference.path, name);
  const float* data = reinterpret_cast<const float*>(record->data);
  return {data, data + record->element_count()};
}

// The generate() keyword arguments python/hf_reference.py used.
GenerationConfig settings_from(const nlohmann::json& kwargs, GenerationConfig generation) {
  generation.num_beams = kwargs.value("num_beams", generation.num_beams);
  if (kwargs.contains("max_new_tokens")) generation.max_new_tokens = kwargs["max_new_tokens"].get<int>();
  generation.no_repeat_ngram_size = kwargs.value("no_repeat_ngram_size", generation.no_repeat_ngram_size);
  generation.length_penalty = kwargs.value("length_penalty", generation.length_penalty);
  if (kwargs.contains("early_stopping")) {
    generation.early_stopping = kwargs["early_stopping"].get<bool>() ? EarlyStopping::True : EarlyStopping::False;
  }
  generation.num_return_sequences = 1;
  return generation;
}

nlohmann::json to_json(const ErrorStatistics& stats) {
  return {{"elements", stats.elements},     {"non_finite", stats.non_finite}, {"max_abs", stats.max_abs},
          {"mean_abs", stats.mean_abs},     {"median_abs", stats.median_abs}, {"max_rel", stats.max_rel},
          {"mean_rel", stats.mean_rel},     {"median_rel", stats.median_rel}, {"reference_rms", stats.reference_rms}};
}

void print_statistics(const char* tensor, const ErrorStatistics& stats) {
  fmt::print("{:<15} abs max {:.3e} mean {:.3e} median {:.3e} | rel max {:.3e} mean {:.3e} median {:.3e}{}\n",
             tensor, stats.max_abs, stats.mean_abs, stats.median_abs, stats.max_rel, stats.mean_rel,
             stats.median_rel, stats.non_finite ? fmt::format(" ({} non-finite!)", stats.non_finite) : "");
}

int compare(const CompareArguments& arguments) {
  const Checkpoint reference = read_checkpoint(arguments.reference + ".safetensors");
  const nlohmann::json record = read_json_file(arguments.reference + ".json");
  const Recognizer recognizer(arguments.engine.model_dir, arguments.engine.options());
  const std::vector<float> pixels = reference_tensor(reference, "pixel_values");
  const size_t count = record.at("images").size();
  if (count == 0 || pixels.size() % count != 0) fail("{}: pixel_values do not hold {} images", reference.path, count);
  const size_t image_values = pixels.size() / count;

  ErrorAccumulator encoder_errors, logits_errors;
  // The encoder in batches of the engine's batch size (its workspace is sized for that).
  const std::vector<float> reference_encoded = reference_tensor(reference, "encoder_output");
  const size_t batch = size_t(arguments.engine.batch);
  const size_t encoded_values = reference_encoded.size() / count;
  for (size_t first = 0; first < count; first += batch) {
    const size_t end = std::min(count, first + batch);
    encoder_errors.add(recognizer.encode({pixels.begin() + first * image_values, pixels.begin() + end * image_values},
                                         int(end - first)),
                       {reference_encoded.begin() + first * encoded_values,
                        reference_encoded.begin() + end * encoded_values});
  }
  const auto& greedy_ids = record.at("ids").at("greedy");
  for (size_t i = 0; i < count; ++i) {
    const std::vector<float> image(pixels.begin() + i * image_values, pixels.begin() + (i + 1) * image_values);
    logits_errors.add(recognizer.decoder_logits(image, greedy_ids.at(i).get<std::vector<int>>()),
                      reference_tensor(reference, fmt::format("logits/{}", i)));
  }
  const ErrorStatistics encoder_stats = encoder_errors.statistics();
  const ErrorStatistics logits_stats = logits_errors.statistics();

  nlohmann::json summary = {{"engine", "trocr-rt"},
                            {"model", arguments.name},
                            {"device", arguments.engine.device},
                            {"dtype", arguments.engine.dtype},
                            {"images", count},
                            {"reference", {{"transformers", record.value("transformers", "")},
                                           {"torch", record.value("torch", "")},
                                           {"device", record.value("device", "")}}},
                            {"encoder_output", to_json(encoder_stats)},
                            {"logits", to_json(logits_stats)}};
  fmt::print("{} {} {} vs HF fp32, {} images\n", arguments.name, arguments.engine.device, arguments.engine.dtype, count);
  print_statistics("encoder output", encoder_stats);
  print_statistics("logits", logits_stats);
  for (const auto& [setting, kwargs] : record.at("settings").items()) {
    const GenerationConfig generation = settings_from(kwargs, recognizer.default_generation());
    const std::vector<Recognition> results = recognizer.recognize_pixels(pixels, int(count), generation);
    size_t identical = 0;
    for (size_t i = 0; i < count; ++i) {
      identical += results[i].best().ids == record.at("ids").at(setting).at(i).get<std::vector<int>>();
    }
    summary["identical_sequences"][setting] = {{"identical", identical}, {"sequences", count}};
    fmt::print("{:<15} {}/{} generated sequences identical to HF's\n", setting, identical, count);
  }
  if (!arguments.json_path.empty()) {
    std::ofstream file(arguments.json_path);
    if (!(file << summary.dump(1) << "\n")) fail("{}: cannot write", arguments.json_path);
  }
  return 0;
}

int run(const CompareArguments& arguments) {
  try {
    return compare(arguments);
  } catch (const nlohmann::json::exception& error) {
    fail("{}.json: not the record python/hf_reference.py writes ({})", arguments.reference, error.what());
  }
}

}  // namespace

Action add_compare_command(CLI::App& app) {
  auto* command = app.add_subcommand("compare", "Error statistics against an HF reference (python/hf_reference.py)");
  auto arguments = std::make_shared<CompareArguments>();
  add_engine_flags(*command, arguments->engine);
  command->add_option("--reference,-r", arguments->reference, "Path prefix of REF.safetensors and REF.json")
      ->required();
  command->add_option("--name", arguments->name, "Model name for the record")->capture_default_str();
  command->add_option("--json", arguments->json_path, "Write the record to this file");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

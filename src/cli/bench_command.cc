// trocr bench: end-to-end time from preprocessed pixels to ids, per batch size and beam
// count, with an exact number of generated tokens (eos is banned until then, as HF's
// min_new_tokens does). Prints a table, and JSON records with --json.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.h"
#include "cpu/threads.h"
#include "engine/backend.h"
#ifdef TROCR_WITH_CUDA
#include "cuda/device_info.h"
#include "cuda/kernel_choice.h"
#endif
#include "trocr/recognizer.h"

namespace trocr::cli {
namespace {

struct BenchArguments {
  std::string model_dir, name = "model", device = "cuda", dtype = "fp16", json_path, commit = "unknown";
  std::vector<int> batches = {1, 8, 32, 128};
  std::vector<int> beams = {1, 4};
  int new_tokens = 20, warmup = 3, repeat = 10;
  int threads = 0;  // the CPU engine's (0: one per physical core)
  bool trocr_chinese_settings = false;
  bool profile = false;
  std::string kernels;  // forced kernel choices (TROCR_KERNELS's syntax); empty: the engine's own
};

std::string gpu_name([[maybe_unused]] const std::string& device) {
#ifdef TROCR_WITH_CUDA
  if (device != "cpu") {
    const auto devices = query_cuda_devices().devices;
    const size_t index = device.size() > 5 ? std::stoul(device.substr(5)) : 0;  // "cuda" or "cuda:N"
    if (index < devices.size()) return devices[index].name;
  }
#endif
  return "cpu";
}

int run(const BenchArguments& arguments) {
  EngineOptions options;
  options.device = arguments.device;
  options.dtype = arguments.dtype;
  options.batch_size = *std::max_element(arguments.batches.begin(), arguments.batches.end());
  options.profile = arguments.profile;
  options.threads = arguments.threads;
#ifdef TROCR_WITH_CUDA
  if (!arguments.kernels.empty()) cuda::set_kernel_overrides(arguments.kernels);
#endif
  const Recognizer recognizer(arguments.model_dir, options);
  const ModelConfig& config = recognizer.model_config();
  const size_t image_values = size_t{3} * config.encoder.image_height * config.encoder.image_width;
  std::mt19937 generator(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  nlohmann::json records = nlohmann::json::array();
  fmt::print("{:<12} {:<5} {:>6} {:>6} {:>12} {:>12}\n", "model", "dtype", "batch", "beams", "ms/batch", "images/s");
  for (int beams : arguments.beams) {
    for (int batch : arguments.batches) {
      std::vector<float> pixels(image_values * batch);
      for (auto& value : pixels) value = normal(generator);
      GenerationConfig settings = recognizer.default_generation();
      settings.num_beams = beams;
      settings.num_return_sequences = 1;
      settings.max_new_tokens.reset();
      settings.max_length = 1 + arguments.new_tokens;
      settings.min_length = 1 + arguments.new_tokens;
      settings.min_new_tokens.reset();
      settings.no_repeat_ngram_size = arguments.trocr_chinese_settings ? 3 : 0;
      settings.length_penalty = arguments.trocr_chinese_settings ? 2.0 : 1.0;
      settings.early_stopping = arguments.trocr_chinese_settings ? EarlyStopping::True : EarlyStopping::False;
      for (int i = 0; i < arguments.warmup; ++i) recognizer.recognize_pixels(pixels, batch, settings);
      std::vector<double> milliseconds;
      for (int i = 0; i < arguments.repeat; ++i) {
        // recognize_pixels returns after the ids are on the host: the clock sees all GPU work.
        const auto start = std::chrono::steady_clock::now();
        const auto results = recognizer.recognize_pixels(pixels, batch, settings);
        const auto stop = std::chrono::steady_clock::now();
        milliseconds.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
        if (results[0].best().ids.size() != size_t(1 + arguments.new_tokens)) {
          fmt::print(stderr, "bench: generated {} tokens, expected {}\n", results[0].best().ids.size() - 1,
                     arguments.new_tokens);
          return kExitError;
        }
      }
      std::sort(milliseconds.begin(), milliseconds.end());
      const double median = milliseconds[milliseconds.size() / 2];
      fmt::print("{:<12} {:<5} {:>6} {:>6} {:>12.3f} {:>12.1f}\n", arguments.name, arguments.dtype, batch, beams,
                 median, batch * 1000.0 / median);
      if (arguments.profile) fmt::print("    last run: {}\n", recognizer.profile_report());
      records.push_back({{"engine", "trocr-rt"},
                         {"model", arguments.name},
                         {"dtype", arguments.dtype},
                         {"device", arguments.device},
                         {"batch", batch},
                         {"beams", beams},
                         {"settings", arguments.trocr_chinese_settings ? "trocr-chinese" : "plain"},
                         {"kernels", arguments.kernels.empty() ? "auto" : arguments.kernels},
                         {"new_tokens", arguments.new_tokens},
                         {"ms_per_batch", median},
                         {"ms_per_image", median / batch},
                         {"images_per_s", batch * 1000.0 / median},
                         {"repeats", arguments.repeat},
                         {"threads", arguments.device == "cpu" ? cpu::threads() : 0},  // what the engine used
                         {"gpu", gpu_name(arguments.device)},
                         {"commit", arguments.commit}});
    }
  }
  if (!arguments.json_path.empty()) {
    std::ofstream(arguments.json_path) << records.dump(1) << "\n";
  }
  return 0;
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto* command = app.add_subcommand("bench", "Time recognition from pixels to ids");
  auto arguments = std::make_shared<BenchArguments>();
  command->add_option("--model,-m", arguments->model_dir, "HF checkpoint directory")->required();
  command->add_option("--name", arguments->name, "Model name for the records")->capture_default_str();
  command->add_option("--device", arguments->device, "cpu, cuda or cuda:N")->capture_default_str();
  command->add_option("--dtype", arguments->dtype, "fp32, fp16, bf16 or fp8")->capture_default_str()
      ->check(CLI::IsMember(engine_dtypes()));
  command->add_option("--batch", arguments->batches, "Batch sizes")->delimiter(',')->capture_default_str();
  command->add_option("--beams", arguments->beams, "Beam counts")->delimiter(',')->capture_default_str();
  command->add_option("--new-tokens", arguments->new_tokens, "Tokens generated per image")
      ->capture_default_str()->check(CLI::Range(1, 4000));
  command->add_option("--warmup", arguments->warmup, "Untimed runs first")->capture_default_str();
  command->add_option("--threads", arguments->threads, "CPU engine threads (0: one per physical core)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--repeat", arguments->repeat, "Timed runs (median reported)")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  command->add_flag("--trocr-chinese", arguments->trocr_chinese_settings,
                    "no_repeat_ngram_size 3, length_penalty 2.0, early_stopping (beam runs)");
  command->add_option("--json", arguments->json_path, "Write the records to this file");
  command->add_flag("--profile", arguments->profile, "Print where the last run of each setting spent its time");
  command->add_option("--commit", arguments->commit, "Commit id for the records");
  command->add_option("--kernels", arguments->kernels,
                      "Force CUDA kernel choices, e.g. portable or cross_attention=encoder_states (comma-separated; "
                      "see src/cuda/kernel_choice.h); by default each op chooses");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

#pragma once
// The flags that every subcommand which runs the model shares: which checkpoint, which engine,
// and overrides of the checkpoint's generation settings.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "trocr/recognizer.h"

namespace trocr::cli {

struct EngineFlags {
  std::string model_dir;
  std::string device = "cpu";
  std::string dtype = "fp32";
  int batch = 8;
  int threads = 0;
  EngineOptions options() const;
};

// Unset flags keep the checkpoint's value (generation_config.json or trocr-chinese's config).
struct GenerationFlags {
  std::optional<int> beams, max_length, max_new_tokens, min_length, no_repeat_ngram_size,
      num_return_sequences;
  std::optional<double> length_penalty;
  std::string early_stopping;
  GenerationConfig apply_to(GenerationConfig generation) const;
};

// `with_batch`: whether --batch is offered (the service batches by its own rules).
void add_engine_flags(CLI::App& command, EngineFlags& flags, bool with_batch = true);
void add_generation_flags(CLI::App& command, GenerationFlags& flags);

}  // namespace trocr::cli

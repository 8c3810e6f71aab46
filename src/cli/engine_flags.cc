#include "cli/engine_flags.h"

#include <algorithm>

#include "engine/backend.h"

namespace trocr::cli {

EngineOptions EngineFlags::options() const {
  EngineOptions options;
  options.device = device;
  options.dtype = dtype;
  options.batch_size = batch;
  options.threads = threads;
  return options;
}

GenerationConfig GenerationFlags::apply_to(GenerationConfig generation) const {
  if (beams) generation.num_beams = *beams;
  if (max_length) {
    generation.max_length = *max_length;
    generation.max_new_tokens.reset();
  }
  if (max_new_tokens) generation.max_new_tokens = *max_new_tokens;
  if (min_length) generation.min_length = *min_length;
  if (no_repeat_ngram_size) generation.no_repeat_ngram_size = *no_repeat_ngram_size;
  if (length_penalty) generation.length_penalty = *length_penalty;
  if (num_return_sequences) generation.num_return_sequences = *num_return_sequences;
  if (early_stopping == "true") generation.early_stopping = EarlyStopping::True;
  if (early_stopping == "false") generation.early_stopping = EarlyStopping::False;
  if (early_stopping == "never") generation.early_stopping = EarlyStopping::Never;
  generation.num_return_sequences = std::min(generation.num_return_sequences, generation.num_beams);
  return generation;
}

void add_engine_flags(CLI::App& command, EngineFlags& flags, bool with_batch) {
  command.add_option("--model,-m", flags.model_dir, "HF checkpoint directory")->required();
  command.add_option("--device", flags.device, "cpu, cuda or cuda:N")->capture_default_str();
  command.add_option("--dtype", flags.dtype,
                     "fp32 or bf16 (CPU and CUDA), fp16 (CUDA), fp8 (CUDA: fp16 with E4M3 encoder products)")
      ->capture_default_str()->check(CLI::IsMember(engine_dtypes()));
  if (with_batch) {
    command.add_option("--batch", flags.batch, "Images per batch")->capture_default_str()->check(CLI::Range(1, 4096));
  }
  command.add_option("--threads", flags.threads, "CPU engine threads (0: one per physical core)")
      ->check(CLI::Range(0, 1024));
}

void add_generation_flags(CLI::App& command, GenerationFlags& flags) {
  command.add_option("--beams", flags.beams, "num_beams (default: the checkpoint's)")
      ->check(CLI::Range(1, 64));
  command.add_option("--max-length", flags.max_length, "max_length, start token included")
      ->check(CLI::Range(2, 100000));
  command.add_option("--max-new-tokens", flags.max_new_tokens, "max_new_tokens")
      ->check(CLI::Range(1, 100000));
  command.add_option("--min-length", flags.min_length, "min_length")->check(CLI::Range(0, 100000));
  command.add_option("--no-repeat-ngram-size", flags.no_repeat_ngram_size, "no_repeat_ngram_size")
      ->check(CLI::Range(0, 1000));
  command.add_option("--length-penalty", flags.length_penalty, "length_penalty");
  command.add_option("--early-stopping", flags.early_stopping, "true, false or never")
      ->check(CLI::IsMember({"true", "false", "never"}));
  command.add_option("--num-return-sequences", flags.num_return_sequences,
                     "Candidates per image (beam search)")->check(CLI::Range(1, 64));
}

}  // namespace trocr::cli

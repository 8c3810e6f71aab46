// The checkpoint directory's JSON: config.json, generation_config.json and the preprocessor
// config. The first byte picks the file; the rest is its text.
#include "fuzz_support.h"
#include "trocr/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const trocr::ModelConfig model = trocr::load_model_config(trocr::fuzz::model_dir());
  const std::string directory = trocr::fuzz::scratch_directory();
  const char* names[] = {"config.json", "generation_config.json", "preprocessor_config.json"};
  const int file = data[0] % 3;
  for (const char* name : names) std::remove((directory + "/" + name).c_str());
  trocr::fuzz::write_scratch_file(names[file], data + 1, size - 1);
  trocr::fuzz::expect_answer_or_error([&] {
    if (file == 0) trocr::load_model_config(directory);
    if (file == 1) trocr::load_generation_config(directory, model);
    if (file == 2) trocr::load_preprocess_config(directory);
  });
  return 0;
}

// A checkpoint file through its reader, then the weights checked against a small model's config
// (names, shapes, the conversion to fp32). Built twice: TROCR_FUZZ_TORCH picks
// pytorch_model.bin (the zip container, the pickle machine, its storages); otherwise
// model.safetensors (the header's JSON, offsets and dtypes).
#include <memory>

#include "formats/checkpoint.h"
#include "fuzz_support.h"
#include "model/weights.h"
#include "trocr/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const trocr::ModelConfig config = trocr::load_model_config(trocr::fuzz::model_dir());
#ifdef TROCR_FUZZ_TORCH
  const auto read = trocr::read_torch_checkpoint;
  const char* name = "pytorch_model.bin";
#else
  const auto read = trocr::read_safetensors;
  const char* name = "model.safetensors";
#endif
  const std::string path = trocr::fuzz::write_scratch_file(name, data, size);
  trocr::fuzz::expect_answer_or_error([&] { trocr::load_weights(read(std::make_shared<trocr::MappedFile>(path)), config); });
  return 0;
}

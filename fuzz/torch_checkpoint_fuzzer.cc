// pytorch_model.bin: the zip container, the pickle machine and its persistent storages, then the
// weights checked against a small model's config.
#include <memory>

#include "formats/checkpoint.h"
#include "fuzz_support.h"
#include "model/weights.h"
#include "trocr/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const trocr::ModelConfig config = trocr::load_model_config(TROCR_FUZZ_MODEL_DIR);
  const std::string path = trocr::fuzz::write_scratch_file("pytorch_model.bin", data, size);
  trocr::fuzz::expect_answer_or_error([&] {
    const trocr::Checkpoint checkpoint = trocr::read_torch_checkpoint(std::make_shared<trocr::MappedFile>(path));
    trocr::load_weights(checkpoint, config);
  });
  return 0;
}

// Image decoding (PNG, JPEG, by content) and HF's preprocessing of what decodes. The first byte
// picks the resampling filter and the target size, so every filter of Pillow's runs.
#include "fuzz_support.h"
#include "trocr/config.h"
#include "trocr/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  trocr::PreprocessConfig config;
  config.resample = static_cast<trocr::ResampleFilter>(data[0] % 6);
  config.height = 8 + data[0] % 24;
  config.width = 8 + (data[0] / 8) % 40;
  trocr::ImageLimits limits;
  limits.max_pixels = 1 << 18;  // bounds the time and memory per input; the limit checks themselves are tested
  trocr::fuzz::expect_answer_or_error([&] {
    const trocr::RgbImage image = trocr::decode_image(data + 1, size - 1, "fuzz-input", limits);
    trocr::preprocess_image(image, config);
  });
  return 0;
}

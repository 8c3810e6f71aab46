// Our preprocessing against HF's ViTImageProcessor (Pillow 12 on the GPU machine) for the
// committed images and the three golden models' processor settings.
#include <cmath>

#include "formats/checkpoint.h"
#include "support/test_support.h"
#include "trocr/image.h"

namespace trocr::test {
namespace {

TEST(HfPixels, PreprocessingMatchesViTImageProcessor) {
  int checked = 0;
  for (const auto& variant : golden_variants()) {
    const PreprocessConfig config = load_preprocess_config(model_dir(variant));
    const Checkpoint golden = read_checkpoint(model_dir(variant) + "/golden.safetensors");
    const auto record = read_json(model_dir(variant) + "/golden.json");
    for (const auto& [image_name, entry] : record["images"].items()) {
      SCOPED_TRACE(variant + " " + image_name);
      const RgbImage image = read_image_file(data_dir() + "/images/" + image_name);
      const std::vector<float> ours = preprocess_image(image, config);
      const TensorRecord* expected = golden.find(image_name + "/pixel_values");
      ASSERT_NE(expected, nullptr);
      ASSERT_EQ(static_cast<size_t>(expected->element_count()), ours.size());
      const float* values = reinterpret_cast<const float*>(expected->data);
      float worst = 0;
      for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::fabs(values[i] - ours[i]));
      EXPECT_LE(worst, 1e-6f);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 18);
}

}  // namespace
}  // namespace trocr::test

// Decoding, RGB conversion, resize and normalization against Pillow itself (the cases that
// make_pil_references.py wrote with Debian's python3-pil before this test runs).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "support/test_support.h"
#include "trocr/image.h"

namespace trocr::test {
namespace {

// Pillow itself is the oracle: Debian's python3-pil writes the cases (once per build tree).
// Written once per build tree, and again whenever the script changed since.
std::string reference_dir() {
  const std::string dir = TROCR_PIL_REFERENCE_DIR;
  const std::filesystem::path manifest = dir + "/manifest.json", script = TROCR_PIL_REFERENCE_SCRIPT;
  if (!std::filesystem::exists(manifest) ||
      std::filesystem::last_write_time(script) > std::filesystem::last_write_time(manifest)) {
    const std::string command = std::string("/usr/bin/python3 ") + TROCR_PIL_REFERENCE_SCRIPT + " " + dir;
    if (std::system(command.c_str()) != 0) ADD_FAILURE() << "failed: " << command;
  }
  return dir;
}

int max_abs_difference(const std::vector<uint8_t>& ours, const std::string& expected) {
  if (ours.size() != expected.size()) return 9999;
  int worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    worst = std::max(worst, std::abs(int(ours[i]) - int(static_cast<uint8_t>(expected[i]))));
  }
  return worst;
}

TEST(PilReference, DecodeResizeAndNormalizeMatchPillow) {
  const auto manifest = read_json(reference_dir() + "/manifest.json");
  PreprocessConfig config;
  config.image_mean = manifest["mean"].get<std::vector<float>>();
  config.image_std = manifest["std"].get<std::vector<float>>();
  int resized_checked = 0;
  for (const auto& entry : manifest["cases"]) {
    const std::string path = reference_dir() + "/" + entry["file"].get<std::string>();
    SCOPED_TRACE(path);
    const RgbImage image = read_image_file(path);
    ASSERT_EQ(image.width, entry["width"].get<int>());
    ASSERT_EQ(image.height, entry["height"].get<int>());
    EXPECT_EQ(max_abs_difference(image.pixels, read_file(path + ".rgb")), 0) << "convert('RGB')";
    for (const auto& target : entry["targets"]) {
      const int width = target[0], height = target[1];
      const std::string stem = path + "." + std::to_string(width) + "x" + std::to_string(height);
      const RgbImage resized = resize_bilinear(image, width, height);
      EXPECT_EQ(max_abs_difference(resized.pixels, read_file(stem + ".rgb")), 0)
          << "resize to " << width << "x" << height;
      config.width = width;
      config.height = height;
      const std::vector<float> pixels = preprocess_image(image, config);
      const std::string expected = read_file(stem + ".f32");
      ASSERT_EQ(expected.size(), pixels.size() * 4);
      float worst = 0;
      for (size_t i = 0; i < pixels.size(); ++i) {
        float value;
        std::memcpy(&value, expected.data() + 4 * i, 4);
        worst = std::max(worst, std::fabs(value - pixels[i]));
      }
      EXPECT_LE(worst, 1e-6f) << "normalized " << width << "x" << height;
      // The server's path: resized ahead on a request's worker, then normalized in its batch.
      const RgbImage resized_ahead = resize_for_model(image, config);
      std::vector<float> two_stages(pixels.size());
      preprocess_image(resized_ahead, config, two_stages.data());
      EXPECT_EQ(two_stages, pixels) << "resized ahead, then normalized, " << width << "x" << height;
      ++resized_checked;
    }
  }
  EXPECT_GT(resized_checked, 80);
}

}  // namespace
}  // namespace trocr::test

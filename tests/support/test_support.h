#pragma once
// Helpers shared by the tests: paths to committed data, a scratch directory per test,
// writers for small safetensors, zip and PNG files, and golden records.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "trocr/error.h"
#include "trocr/config.h"
#include "trocr/image.h"

namespace trocr::test {

std::string data_dir();                  // tests/data in the source tree
std::string model_dir(const std::string& variant);  // tests/data/models/VARIANT
std::vector<std::string> golden_variants();

// A fresh directory under the build tree, removed when the test ends.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  std::string path(const std::string& name) const { return root_ + "/" + name; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
void copy_file(const std::string& from, const std::string& to);
// Copies a golden model directory's files (not golden.*) into `to`.
void copy_model_dir(const std::string& variant, const std::string& to);

nlohmann::json read_json(const std::string& path);
void write_json(const std::string& path, const nlohmann::json& json);

// safetensors bytes from a header object and the data section.
std::string safetensors_bytes(const nlohmann::json& header, const std::string& data);
// A safetensors file holding `checkpoint`'s tensors except `drop`, plus `extra` tensors.
void write_safetensors(const std::string& path, const Checkpoint& checkpoint,
                       const std::vector<std::string>& drop = {});

// A tensor of a golden.safetensors file as floats (a test failure when it is missing).
std::vector<float> golden_tensor(const Checkpoint& golden, const std::string& name);
// The images a golden.json record was made from (tests/data/images), in the record's order.
struct GoldenImages {
  std::vector<std::string> names;
  std::vector<RgbImage> images;
};
GoldenImages read_golden_images(const nlohmann::json& record);
// The generate() keyword arguments of make_goldens.py's GENERATE_CASES (a golden record's
// "generate" names; "checkpoint_default": none), applied on top of the checkpoint's own
// settings as HF applies them.
GenerationConfig case_settings(const std::string& name, GenerationConfig config);
// max |ours - reference| / max |reference|; infinite for a size mismatch or a non-finite value.
double relative_error(const std::vector<float>& ours, const std::vector<float>& reference);

// A generator for a test on random inputs: seeded from TROCR_TEST_SEED when that is set (to
// replay a failure), else afresh; the seed is printed and recorded in the test's XML.
std::mt19937 seeded_generator();

// A zip archive of stored entries, as torch.save writes.
std::string zip_bytes(const std::vector<std::pair<std::string, std::string>>& entries);

// Expects `call` to throw trocr::Error whose message contains every fragment.
#define EXPECT_ERROR_CONTAINS(call, ...)                                              \
  do {                                                                               \
    try {                                                                            \
      call;                                                                          \
      ADD_FAILURE() << "expected a trocr::Error from " #call;                        \
    } catch (const ::trocr::Error& error) {                                          \
      for (const char* fragment : {__VA_ARGS__}) {                                   \
        EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)       \
            << "message: " << error.what() << "\nmissing: " << fragment;             \
      }                                                                              \
    }                                                                                \
  } while (0)

}  // namespace trocr::test

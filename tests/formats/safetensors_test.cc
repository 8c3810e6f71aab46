// safetensors: HF-written files load; every kind of broken file is a clear error.
#include <cstring>

#include "common/dtype.h"
#include "support/test_support.h"
#include "trocr/error.h"

namespace trocr::test {
namespace {

Checkpoint load(const std::string& path) { return read_checkpoint(path); }

TEST(Safetensors, ReadsEveryHfGoldenModel) {
  for (const auto& variant : golden_variants()) {
    const std::string path = model_dir(variant) + "/model.safetensors";
    const Checkpoint checkpoint = load(path);
    const auto golden = read_json(model_dir(variant) + "/golden.json");
    EXPECT_GT(checkpoint.tensors.size(), 50u) << variant;
    const TensorRecord* cls = checkpoint.find("encoder.embeddings.cls_token");
    ASSERT_NE(cls, nullptr) << variant;
    EXPECT_EQ(cls->dtype, DType::F32);
    EXPECT_EQ(cls->shape.size(), 3u);
    EXPECT_EQ(cls->nbytes, static_cast<size_t>(cls->element_count()) * 4);
  }
}

TEST(Safetensors, ConvertsHalfAndBfloat16Tensors) {
  ScratchDir scratch;
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 65504.0f, 1e-7f, 3.14159f};
  std::string half_bytes, bf16_bytes;
  for (float value : values) {
    const uint16_t h = float_to_half(value), b = float_to_bfloat16(value);
    half_bytes.append(reinterpret_cast<const char*>(&h), 2);
    bf16_bytes.append(reinterpret_cast<const char*>(&b), 2);
  }
  nlohmann::json header = {
      {"h", {{"dtype", "F16"}, {"shape", {2, 3}}, {"data_offsets", {0, 12}}}},
      {"b", {{"dtype", "BF16"}, {"shape", {6}}, {"data_offsets", {12, 24}}}},
      {"__metadata__", {{"format", "pt"}}}};
  write_file(scratch.path("m.safetensors"), safetensors_bytes(header, half_bytes + bf16_bytes));
  const Checkpoint checkpoint = load(scratch.path("m.safetensors"));
  std::vector<float> half(6), bf16(6);
  convert_to_float32(DType::F16, checkpoint.find("h")->data, 6, half.data());
  convert_to_float32(DType::BF16, checkpoint.find("b")->data, 6, bf16.data());
  // Hand-checked: exact for representable values, nearest otherwise.
  EXPECT_EQ(half[0], 0.0f);
  EXPECT_EQ(half[1], 1.0f);
  EXPECT_EQ(half[2], -2.5f);
  EXPECT_EQ(half[3], 65504.0f);
  EXPECT_NEAR(half[4], 1.1920928955078125e-07f, 0);  // the nearest fp16 subnormal: 2 * 2^-24
  EXPECT_EQ(half[5], 3.140625f);
  EXPECT_EQ(bf16[5], 3.140625f);
  EXPECT_EQ(bf16[3], 65536.0f);
}

struct BrokenCase {
  const char* name;
  std::string bytes;
  const char* expected;
};

std::string with_header(const nlohmann::json& header, size_t data_bytes) {
  return safetensors_bytes(header, std::string(data_bytes, '\x01'));
}

TEST(Safetensors, RejectsBrokenFiles) {
  ScratchDir scratch;
  const auto tensor = [](const char* dtype, std::vector<int> shape, uint64_t begin, uint64_t end) {
    return nlohmann::json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
  };
  std::string lying_length(8, '\0');
  const uint64_t huge = 1ull << 40;
  std::memcpy(lying_length.data(), &huge, 8);
  lying_length += "{}";
  const std::vector<BrokenCase> cases = {
      {"empty", "", "empty file"},
      {"short", "abc", "truncated safetensors"},
      {"lying_length", lying_length, "header claims"},
      {"not_json", safetensors_bytes(nlohmann::json("x"), "").replace(8, 3, "{{{"), "not valid JSON"},
      {"array_header", safetensors_bytes(nlohmann::json::array(), ""), "not a JSON object"},
      {"unknown_dtype", with_header({{"t", tensor("F8_E9", {2}, 0, 2)}}, 2), "unsupported dtype 'F8_E9'"},
      {"size_mismatch", with_header({{"t", tensor("F32", {2, 2}, 0, 12)}}, 16), "needs 16 bytes"},
      {"out_of_range", with_header({{"t", tensor("F32", {4}, 0, 16)}}, 8), "outside the 8 bytes"},
      {"overlap", with_header({{"a", tensor("F32", {2}, 0, 8)}, {"b", tensor("F32", {2}, 4, 12)}}, 12),
       "overlap"},
      {"negative_dim", with_header({{"t", {{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 0}}}}}, 0),
       "not a non-negative integer"},
      {"missing_fields", with_header({{"t", {{"dtype", "F32"}}}}, 0), "dtype, shape and data_offsets"},
      {"huge_shape", with_header({{"t", tensor("F32", {1 << 30, 1 << 30}, 0, 0)}}, 0), "too large"},
      {"begin_after_end", with_header({{"t", tensor("F32", {1}, 8, 4)}}, 8), "outside"},
  };
  for (const auto& broken : cases) {
    SCOPED_TRACE(broken.name);
    const std::string path = scratch.path(std::string(broken.name) + ".safetensors");
    write_file(path, broken.bytes);
    EXPECT_ERROR_CONTAINS(load(path), path.c_str(), broken.expected);
  }
}

TEST(Safetensors, TruncatedHfFileIsAnError) {
  ScratchDir scratch;
  const std::string original = read_file(model_dir("vit-char") + "/model.safetensors");
  for (size_t keep : {size_t{4}, size_t{100}, original.size() / 2, original.size() - 1}) {
    const std::string path = scratch.path("cut.safetensors");
    write_file(path, original.substr(0, keep));
    EXPECT_THROW(load(path), Error) << keep;
  }
}

TEST(Safetensors, MissingFileNamesThePath) {
  EXPECT_ERROR_CONTAINS(load("/nonexistent/model.safetensors"), "/nonexistent/model.safetensors",
                        "cannot open");
}

}  // namespace
}  // namespace trocr::test

// pytorch_model.bin: HF's tensors come out identical to model.safetensors; malicious and
// broken archives are refused without executing anything.
#include <cstring>
#include <fstream>

#include "support/test_support.h"
#include "trocr/error.h"

namespace trocr::test {
namespace {

TEST(TorchCheckpoint, MatchesSafetensorsTensorForTensor) {
  const Checkpoint from_bin = read_checkpoint(model_dir("vit-char") + "/pytorch_model.bin");
  const Checkpoint from_safetensors = read_checkpoint(model_dir("vit-char") + "/model.safetensors");
  ASSERT_EQ(from_bin.tensors.size(), from_safetensors.tensors.size());
  for (const auto& [name, expected] : from_safetensors.tensors) {
    const TensorRecord* actual = from_bin.find(name);
    ASSERT_NE(actual, nullptr) << name;
    EXPECT_EQ(actual->dtype, expected.dtype) << name;
    EXPECT_EQ(actual->shape, expected.shape) << name;
    ASSERT_EQ(actual->nbytes, expected.nbytes) << name;
    EXPECT_EQ(std::memcmp(actual->data, expected.data, expected.nbytes), 0) << name;
  }
}

// Pickle programs written by hand, opcode by opcode (protocol 2, as torch.save uses).
std::string unicode(const std::string& text) {
  std::string out = "X";
  const uint32_t length = text.size();
  out.append(reinterpret_cast<const char*>(&length), 4);
  return out + text;
}

std::string int1(uint8_t value) { return std::string("K") + static_cast<char>(value); }

// {name: _rebuild_tensor_v2(storage(key, FloatStorage, numel), offset, size, stride)}
std::string state_dict_pickle(const std::string& name, const std::string& key, int numel, int offset,
                              std::vector<int> size, std::vector<int> stride,
                              const std::string& storage = "FloatStorage") {
  std::string p = "\x80\x02}(";
  p += unicode(name);
  p += "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += "(" + unicode("storage") + "ctorch\n" + storage + "\n" + unicode(key) + unicode("cpu") +
       int1(numel) + "tQ";
  p += int1(offset) + "(";
  for (int s : size) p += int1(s);
  p += "t(";
  for (int s : stride) p += int1(s);
  p += "t\x89" "ccollections\nOrderedDict\n)RtR";
  p += "u.";
  return p;
}

std::string floats(std::vector<float> values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

std::string archive(const std::string& pickle, const std::string& storage_bytes,
                    const std::string& byteorder = "little") {
  return zip_bytes({{"archive/data.pkl", pickle},
                    {"archive/byteorder", byteorder},
                    {"archive/data/0", storage_bytes},
                    {"archive/version", "3\n"}});
}

TEST(TorchCheckpoint, ReadsHandWrittenArchiveAndMakesStridedTensorsContiguous) {
  ScratchDir scratch;
  const std::string path = scratch.path("t.bin");
  // A 2x3 view with strides (1, 2) over 6 floats: the transpose of a 3x2 row-major matrix.
  write_file(path, archive(state_dict_pickle("w", "0", 6, 0, {2, 3}, {1, 2}),
                           floats({0, 1, 2, 3, 4, 5})));
  const Checkpoint checkpoint = read_checkpoint(path);
  const TensorRecord* w = checkpoint.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> values(6);
  std::memcpy(values.data(), w->data, 24);
  EXPECT_EQ(values, (std::vector<float>{0, 2, 4, 1, 3, 5}));
}

TEST(TorchCheckpoint, ReadsOffsetViewsInPlace) {
  ScratchDir scratch;
  const std::string path = scratch.path("t.bin");
  write_file(path, archive(state_dict_pickle("w", "0", 6, 2, {2, 2}, {2, 1}),
                           floats({0, 1, 2, 3, 4, 5})));
  const Checkpoint checkpoint = read_checkpoint(path);
  std::vector<float> values(4);
  std::memcpy(values.data(), checkpoint.find("w")->data, 16);
  EXPECT_EQ(values, (std::vector<float>{2, 3, 4, 5}));
}

TEST(TorchCheckpoint, RefusesToRunCode) {
  ScratchDir scratch;
  // The classic exploit: os.system("touch pwned") through REDUCE.
  const std::string exploit =
      "\x80\x02" "cos\nsystem\n(" + unicode("touch " + scratch.path("pwned")) + "tR.";
  const std::string path = scratch.path("evil.bin");
  write_file(path, archive(exploit, ""));
  EXPECT_ERROR_CONTAINS(read_checkpoint(path), path.c_str(), "global 'os.system'", "not allowed");
  EXPECT_FALSE(std::ifstream(scratch.path("pwned")).good());
  for (const char* global : {"builtins\neval\n", "subprocess\nPopen\n", "torch\nload\n",
                             "__builtin__\nexec\n", "torch._utils\n_rebuild_qtensor\n"}) {
    write_file(path, archive(std::string("\x80\x02") + "c" + global + ").", ""));
    EXPECT_ERROR_CONTAINS(read_checkpoint(path), "not allowed");
  }
}

TEST(TorchCheckpoint, RejectsBrokenArchives) {
  ScratchDir scratch;
  const std::string good_pickle = state_dict_pickle("w", "0", 4, 0, {4}, {1});
  const std::string four = floats({1, 2, 3, 4});
  struct Case {
    const char* name;
    std::string bytes;
    const char* expected;
  };
  std::string compressed = archive(good_pickle, four);
  compressed[8] = 8;  // local header method: deflate
  std::string central = compressed;
  const size_t directory = central.find("PK\x01\x02");
  central[directory + 10] = 8;  // central directory method: deflate
  const std::vector<Case> cases = {
      {"empty", "", "empty file"},
      {"not_zip", "PK\x03\x04 garbage that is not a zip archive", "no end-of-central-directory"},
      {"legacy", std::string("\x80\x02\x8a\x0a") + "legacy", "legacy"},
      {"compressed", central, "compressed"},
      {"no_pickle", zip_bytes({{"archive/data/0", four}}), "data.pkl"},
      {"missing_storage", zip_bytes({{"archive/data.pkl", good_pickle}}), "no zip entry"},
      {"short_storage", archive(good_pickle, floats({1, 2})), "claims 4 F32 elements"},
      {"view_past_storage", archive(state_dict_pickle("w", "0", 4, 2, {4}, {1}), four),
       "reads past its storage"},
      {"big_endian", archive(good_pickle, four, "big"), "byte order"},
      {"not_a_dict", archive(std::string("\x80\x02]q\x00.", 6), ""), "expected a state dict"},
      {"unknown_storage", archive(state_dict_pickle("w", "0", 4, 0, {4}, {1}, "ComplexFloatStorage"), four),
       "not allowed"},
      {"bad_opcode", archive("\x80\x02i__main__\nX\n.", ""), "unsupported pickle opcode"},
      {"truncated_pickle", archive(good_pickle.substr(0, 40), four), "truncated"},
      {"stack_underflow", archive("\x80\x02t.", ""), "MARK"},
      {"bad_memo", archive("\x80\x02h\x05.", ""), "memo index 5"},
  };
  for (const auto& broken : cases) {
    SCOPED_TRACE(broken.name);
    const std::string path = scratch.path(std::string(broken.name) + ".bin");
    write_file(path, broken.bytes);
    EXPECT_ERROR_CONTAINS(read_checkpoint(path), path.c_str(), broken.expected);
  }
}

TEST(TorchCheckpoint, TruncatedHfArchiveIsAnError) {
  ScratchDir scratch;
  const std::string original = read_file(model_dir("vit-char") + "/pytorch_model.bin");
  for (size_t keep : {size_t{30}, original.size() / 3, original.size() - 10}) {
    const std::string path = scratch.path("cut.bin");
    write_file(path, original.substr(0, keep));
    EXPECT_THROW(read_checkpoint(path), Error) << keep;
  }
}

}  // namespace
}  // namespace trocr::test

// Detokenizers against HF: the BPE samples decoded by HF's RobertaTokenizer, and the char-level
// texts that trocr-chinese's decode rule gave for every generated sequence of the goldens.
#include "support/test_support.h"
#include "text/utf8.h"
#include "trocr/error.h"
#include "trocr/text.h"

namespace trocr::test {
namespace {

TEST(BpeDetokenizer, MatchesHfBatchDecode) {
  const auto golden = read_json(model_dir("deit-bpe") + "/golden.json");
  const auto detokenizer = load_detokenizer(model_dir("deit-bpe"));
  EXPECT_STREQ(detokenizer->kind(), "byte-level BPE");
  const auto& samples = golden["tokenizer_decode"];
  for (size_t i = 0; i < samples["ids"].size(); ++i) {
    EXPECT_EQ(detokenizer->decode(samples["ids"][i].get<std::vector<int>>()),
              samples["text"][i].get<std::string>())
        << samples["ids"][i].dump();
  }
}

void expect_generated_texts_match(const std::string& variant) {
  const auto golden = read_json(model_dir(variant) + "/golden.json");
  const auto detokenizer = load_detokenizer(model_dir(variant));
  int checked = 0;
  for (const auto& [image, entry] : golden["images"].items()) {
    for (const auto& [setting, result] : entry["generate"].items()) {
      for (size_t row = 0; row < result["ids"].size(); ++row) {
        EXPECT_EQ(detokenizer->decode(result["ids"][row].get<std::vector<int>>()),
                  result["text"][row].get<std::string>())
            << variant << " " << image << " " << setting;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 40);
}

TEST(BpeDetokenizer, MatchesHfOnGeneratedSequences) { expect_generated_texts_match("deit-bpe"); }

TEST(CharDetokenizer, MatchesTrocrChineseDecodeOnGeneratedSequences) {
  expect_generated_texts_match("vit-char");
  expect_generated_texts_match("vit-proj");
}

TEST(CharDetokenizer, StopsAtEndAndSkipsSpecials) {
  const auto detokenizer = load_detokenizer(model_dir("vit-char"));
  EXPECT_STREQ(detokenizer->kind(), "char-level");
  // vocab: <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4 识=5 别=6 ...
  EXPECT_EQ(detokenizer->decode({0, 5, 3, 6, 1, 2, 5}), "识别");
  EXPECT_EQ(detokenizer->decode({0, 4}), "<mask>");  // trocr-chinese does not skip <mask>
  EXPECT_EQ(detokenizer->decode({0, 9999, 5}), "识");
}

TEST(Utf8, ReplacesInvalidSequencesLikePython) {
  // Hand-checked with bytes.decode("utf-8", errors="replace").
  EXPECT_EQ(utf8_sanitize("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_sanitize("\xe4\xb8"), "\xEF\xBF\xBD");          // one maximal subpart
  EXPECT_EQ(utf8_sanitize("\xe4\xb8" "a"), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(utf8_sanitize("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(utf8_sanitize("\xc0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(utf8_sanitize("中文"), "中文");
}

TEST(Detokenizer, BrokenVocabularies) {
  ScratchDir scratch;
  write_file(scratch.path("vocab.json"), "[1, 2]");
  EXPECT_ERROR_CONTAINS(load_detokenizer(scratch.root()), "vocab.json", "object");
  write_file(scratch.path("vocab.json"), R"({"<s>": 0, "a": "x"})");
  EXPECT_ERROR_CONTAINS(load_detokenizer(scratch.root()), "token 'a'", "integer id");
  write_file(scratch.path("vocab.json"), R"({"<s>": 0, "a": 0})");
  EXPECT_ERROR_CONTAINS(load_detokenizer(scratch.root()), "id 0 is given to both");
  write_file(scratch.path("vocab.json"), R"({"<s>": 0, "a": 1})");
  EXPECT_ERROR_CONTAINS(load_detokenizer(scratch.root()), "needs the token </s>");
  std::remove(scratch.path("vocab.json").c_str());
  EXPECT_ERROR_CONTAINS(load_detokenizer(scratch.root()), "vocab.json", "missing");
}

}  // namespace
}  // namespace trocr::test

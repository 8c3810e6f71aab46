// trocr-chinese's vocabulary: <s> <pad> </s> <unk> <mask>, then one character per entry.
#include "common/check.h"
#include "text/vocab_file.h"
#include "trocr/text.h"

namespace trocr {
namespace {

class CharDetokenizer : public Detokenizer {
 public:
  CharDetokenizer(Vocabulary vocabulary, const std::string& path)
      : vocabulary_(std::move(vocabulary)) {
    end_ = vocabulary_.id_of("</s>");
    if (end_ < 0) fail("{}: a char-level vocabulary needs the token </s>", path);
    for (const char* special : {"<s>", "<pad>", "<unk>"}) {
      const int id = vocabulary_.id_of(special);
      if (id >= 0) skipped_.push_back(id);
    }
  }

  std::string decode(const std::vector<int>& ids) const override {
    std::string text;
    for (int id : ids) {
      if (id == end_) break;
      if (id < 0 || static_cast<size_t>(id) >= vocabulary_.tokens.size() ||
          !vocabulary_.present[id]) {
        continue;  // ids past vocab.json (a model with a larger vocab_size) have no text
      }
      bool skip = false;
      for (int special : skipped_) skip = skip || id == special;
      if (!skip) text += vocabulary_.tokens[id];
    }
    return text;
  }

  size_t vocab_size() const override { return vocabulary_.tokens.size(); }
  const char* kind() const override { return "char-level"; }

 private:
  Vocabulary vocabulary_;
  int end_ = -1;
  std::vector<int> skipped_;
};

}  // namespace

std::unique_ptr<Detokenizer> load_char_detokenizer(const std::string& vocab_path) {
  return std::make_unique<CharDetokenizer>(read_vocab_json(vocab_path), vocab_path);
}

}  // namespace trocr

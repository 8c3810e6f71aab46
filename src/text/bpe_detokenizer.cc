// RoBERTa/GPT-2 byte-level BPE decoding: each token's characters stand for bytes through
// GPT-2's byte-to-unicode table; the bytes are UTF-8, invalid sequences become U+FFFD.
#include <sys/stat.h>

#include <array>
#include <set>
#include <unordered_map>

#include "common/check.h"
#include "formats/json_file.h"
#include "formats/mapped_file.h"
#include "text/utf8.h"
#include "text/vocab_file.h"
#include "trocr/text.h"

namespace trocr {
namespace {

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// GPT-2's bytes_to_unicode, inverted: code point -> byte.
std::unordered_map<uint32_t, uint8_t> unicode_to_byte() {
  std::unordered_map<uint32_t, uint8_t> table;
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    table[printable[b] ? static_cast<uint32_t>(b) : next++] = static_cast<uint8_t>(b);
  }
  return table;
}

// Special tokens as tokenizer_config.json names them (a string or {"content": ...}).
std::set<std::string> special_tokens(const std::string& model_dir) {
  std::set<std::string> specials = {"<s>", "</s>", "<unk>", "<pad>", "<mask>"};
  const std::string path = model_dir + "/tokenizer_config.json";
  if (!file_exists(path)) return specials;
  const nlohmann::json json = read_json_file(path);
  if (!json.is_object()) fail("{}: expected a JSON object", path);
  specials.clear();
  auto add = [&](const nlohmann::json& value) {
    if (value.is_string()) specials.insert(value.get<std::string>());
    if (value.is_object() && value.contains("content") && value["content"].is_string()) {
      specials.insert(value["content"].get<std::string>());
    }
  };
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    if (json.contains(key)) add(json[key]);
  }
  if (json.contains("additional_special_tokens") && json["additional_special_tokens"].is_array()) {
    for (const auto& token : json["additional_special_tokens"]) add(token);
  }
  if (json.contains("added_tokens_decoder") && json["added_tokens_decoder"].is_object()) {
    for (const auto& [id, token] : json["added_tokens_decoder"].items()) {
      if (token.is_object() && token.value("special", false)) add(token);
    }
  }
  return specials;
}

class BpeDetokenizer : public Detokenizer {
 public:
  BpeDetokenizer(Vocabulary vocabulary, const std::set<std::string>& specials)
      : vocabulary_(std::move(vocabulary)) {
    const auto table = unicode_to_byte();
    token_bytes_.resize(vocabulary_.tokens.size());
    special_.assign(vocabulary_.tokens.size(), false);
    for (size_t id = 0; id < vocabulary_.tokens.size(); ++id) {
      if (!vocabulary_.present[id]) continue;
      const std::string& token = vocabulary_.tokens[id];
      special_[id] = specials.count(token) > 0;
      for (uint32_t code_point : utf8_code_points(token)) {
        auto found = table.find(code_point);
        if (found != table.end()) {
          token_bytes_[id] += static_cast<char>(found->second);
        } else {
          token_bytes_[id] += utf8_encode(code_point);  // not a byte-level symbol: keep it
        }
      }
    }
  }

  std::string decode(const std::vector<int>& ids) const override {
    std::string bytes;
    for (int id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= token_bytes_.size() || special_[id]) continue;
      bytes += token_bytes_[id];
    }
    return utf8_sanitize(bytes);
  }

  size_t vocab_size() const override { return vocabulary_.tokens.size(); }
  const char* kind() const override { return "byte-level BPE"; }

 private:
  Vocabulary vocabulary_;
  std::vector<std::string> token_bytes_;
  std::vector<bool> special_;
};

bool has_merge_rules(const std::string& merges_path) {
  if (!file_exists(merges_path)) return false;
  const std::string text = read_text_file(merges_path);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (!line.empty() && line.rfind("#version", 0) != 0 && line.find(' ') != std::string::npos) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

}  // namespace

std::unique_ptr<Detokenizer> load_bpe_detokenizer(const std::string& model_dir) {
  return std::make_unique<BpeDetokenizer>(read_vocab_json(model_dir + "/vocab.json"),
                                          special_tokens(model_dir));
}

std::unique_ptr<Detokenizer> load_detokenizer(const std::string& model_dir) {
  const std::string vocab = model_dir + "/vocab.json";
  if (!file_exists(vocab)) fail("{}: missing (the tokenizer's vocabulary)", vocab);
  if (has_merge_rules(model_dir + "/merges.txt")) return load_bpe_detokenizer(model_dir);
  return load_char_detokenizer(vocab);
}

}  // namespace trocr

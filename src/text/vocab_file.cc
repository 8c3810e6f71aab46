#include "text/vocab_file.h"

#include "common/check.h"
#include "formats/json_file.h"

namespace trocr {

int Vocabulary::id_of(const std::string& token) const {
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (present[id] && tokens[id] == token) return static_cast<int>(id);
  }
  return -1;
}

Vocabulary read_vocab_json(const std::string& path) {
  const nlohmann::json json = read_json_file(path);
  if (!json.is_object()) fail("{}: expected an object mapping tokens to ids", path);
  constexpr int64_t kMaxVocabulary = 1 << 22;
  Vocabulary vocabulary;
  for (const auto& [token, id_value] : json.items()) {
    if (!id_value.is_number_integer()) {
      fail("{}: token '{}' maps to {}, expected an integer id", path, token, id_value.dump());
    }
    const int64_t id = id_value.get<int64_t>();
    if (id < 0 || id >= kMaxVocabulary) fail("{}: token '{}' has id {} out of range", path, token, id);
    if (static_cast<size_t>(id) >= vocabulary.tokens.size()) {
      vocabulary.tokens.resize(id + 1);
      vocabulary.present.resize(id + 1, false);
    }
    if (vocabulary.present[id]) {
      fail("{}: id {} is given to both '{}' and '{}'", path, id, vocabulary.tokens[id], token);
    }
    vocabulary.tokens[id] = token;
    vocabulary.present[id] = true;
  }
  if (vocabulary.tokens.empty()) fail("{}: empty vocabulary", path);
  return vocabulary;
}

}  // namespace trocr

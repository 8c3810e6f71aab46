#pragma once
// vocab.json: token string -> id, inverted into an id -> token table.
#include <string>
#include <vector>

namespace trocr {

struct Vocabulary {
  std::vector<std::string> tokens;  // by id; ids missing from the file are empty
  std::vector<bool> present;

  int id_of(const std::string& token) const;  // -1 if absent
};

Vocabulary read_vocab_json(const std::string& path);

}  // namespace trocr

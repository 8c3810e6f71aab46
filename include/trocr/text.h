#pragma once
// Turning generated token ids back into text, as the checkpoint's tokenizer would.
#include <memory>
#include <string>
#include <vector>

#include "trocr/config.h"

namespace trocr {

class Detokenizer {
 public:
  virtual ~Detokenizer() = default;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual size_t vocab_size() const = 0;
  virtual const char* kind() const = 0;
};

// trocr-chinese's char-level vocab.json: concatenates characters, stops at </s>, skips <s>,
// <pad> and <unk> (its decode_text).
std::unique_ptr<Detokenizer> load_char_detokenizer(const std::string& vocab_path);
// RoBERTa byte-level BPE (English TrOCR): what batch_decode(skip_special_tokens=True) gives.
std::unique_ptr<Detokenizer> load_bpe_detokenizer(const std::string& model_dir);
// Picks the kind from the directory: a merges.txt with merge rules means byte-level BPE,
// otherwise vocab.json is read as a char-level vocabulary.
std::unique_ptr<Detokenizer> load_detokenizer(const std::string& model_dir);

}  // namespace trocr

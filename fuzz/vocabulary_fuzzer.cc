// Tokenizer files: a char-level vocab.json (trocr-chinese), or byte-level BPE (vocab.json and
// merges.txt), then decoding ids with it. The first byte picks the kind; for BPE the rest is
// split at the first "\n---\n" into vocab.json and merges.txt; the last bytes are the ids.
#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "trocr/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string directory = trocr::fuzz::scratch_directory();
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool bpe = data[0] % 2 == 1;
  std::string vocab = text, merges;
  if (bpe) {
    const size_t split = text.find("\n---\n");
    vocab = text.substr(0, split);
    merges = split == std::string::npos ? "" : text.substr(split + 5);
  }
  std::remove((directory + "/merges.txt").c_str());
  trocr::fuzz::write_scratch_file("vocab.json", reinterpret_cast<const uint8_t*>(vocab.data()), vocab.size());
  if (bpe) {
    trocr::fuzz::write_scratch_file("merges.txt", reinterpret_cast<const uint8_t*>(merges.data()), merges.size());
  }
  trocr::fuzz::expect_answer_or_error([&] {
    const auto detokenizer = trocr::load_detokenizer(directory);
    std::vector<int> ids;
    for (size_t i = size > 16 ? size - 16 : 1; i < size; ++i) ids.push_back(int(data[i]) - 8);  // some out of range
    detokenizer->decode(ids);
  });
  return 0;
}

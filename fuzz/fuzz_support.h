#pragma once
// What the libFuzzer targets share. A reader's verdict on bad input must be a trocr::Error (the
// project's one error type, with a message naming the file): it is caught here. Anything else
// (another exception, a crash, a leak, undefined behaviour, a hang) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "trocr/error.h"

namespace trocr::fuzz {

// A directory of this process's own, for readers that take paths.
inline const std::string& scratch_directory() {
  static const std::string directory = [] {
    std::string pattern = "/tmp/trocr-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    return pattern;
  }();
  return directory;
}

inline std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_directory() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  return path;
}

// The small model whose config the readers check against: the build's copy, or
// $TROCR_FUZZ_MODEL_DIR where the binaries run elsewhere (scripts/device_fuzz.sh).
inline std::string model_dir() {
  const char* elsewhere = std::getenv("TROCR_FUZZ_MODEL_DIR");
  return elsewhere != nullptr ? elsewhere : TROCR_FUZZ_MODEL_DIR;
}

// Runs `read`; a trocr::Error is the expected answer to bad input.
template <typename Read>
void expect_answer_or_error(Read read) {
  try {
    read();
  } catch (const trocr::Error&) {
  }
}

}  // namespace trocr::fuzz

#pragma once
// Helpers that build trocr::Error messages with fmt.
#include <fmt/format.h>

#include "trocr/error.h"

namespace trocr {

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Overflow-checked arithmetic for sizes read from untrusted files.
bool checked_mul(uint64_t a, uint64_t b, uint64_t* out);
bool checked_add(uint64_t a, uint64_t b, uint64_t* out);

}  // namespace trocr

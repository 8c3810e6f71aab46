#pragma once
// The one error type of trocr-rt. Its message names the file, tensor or field,
// what was expected and what was found.
#include <stdexcept>
#include <string>

namespace trocr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace trocr

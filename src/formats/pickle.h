#pragma once
// A small pickle interpreter for checkpoints. It builds plain values (numbers, strings, tuples,
// lists, dicts) and never executes code: a GLOBAL must be one the caller allows, and REDUCE
// and persistent ids are handed to the caller's hooks, which build only what they know.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace trocr {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Object };
  Kind kind = Kind::None;
  int64_t integer = 0;        // Bool, Int
  double number = 0;          // Float
  std::string text;           // String, Bytes, Global ("module.name")
  std::vector<PickleRef> items;  // Tuple, List; Dict as key, value, key, value, ...
  std::shared_ptr<void> object;  // Object: whatever a hook built (a tensor, a storage)

  static PickleRef make(Kind kind) {
    auto value = std::make_shared<PickleValue>();
    value->kind = kind;
    return value;
  }
};

const char* pickle_kind_name(PickleValue::Kind kind);

struct PickleHooks {
  // Whether GLOBAL module.name may be loaded at all.
  std::function<bool(const std::string& global)> allow_global;
  // REDUCE: applies an allowed global to its argument tuple.
  std::function<PickleRef(const std::string& global, const PickleRef& arguments)> call;
  // BINPERSID: resolves a persistent id (torch uses these for tensor storages).
  std::function<PickleRef(const PickleRef& persistent_id)> persistent_load;
};

// Runs the pickle program in [data, data + size). `what` names it in errors.
PickleRef unpickle(const unsigned char* data, size_t size, const std::string& what,
                   const PickleHooks& hooks);

}  // namespace trocr

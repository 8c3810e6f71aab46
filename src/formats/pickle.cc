#include "formats/pickle.h"

#include <unordered_map>

#include "common/check.h"
#include "formats/byte_reader.h"

namespace trocr {
namespace {

using Kind = PickleValue::Kind;
constexpr size_t kMaxStack = 1u << 22;
constexpr size_t kMaxMemo = 1u << 24;

class Machine {
 public:
  Machine(const unsigned char* data, size_t size, const std::string& what,
          const PickleHooks& hooks)
      : reader_(data, size, what), what_(what), hooks_(hooks) {}

  PickleRef run() {
    while (true) {
      const size_t offset = reader_.position();
      const uint8_t opcode = reader_.u8();
      if (opcode == '.') break;  // STOP
      step(opcode, offset);
    }
    if (stack_.size() != 1 || !marks_.empty()) {
      fail("{}: pickle ended with {} values on the stack, expected 1", what_, stack_.size());
    }
    return stack_.back();
  }

 private:
  void step(uint8_t opcode, size_t offset) {
    switch (opcode) {
      case 0x80: {  // PROTO
        const uint8_t version = reader_.u8();
        if (version > 5) fail("{}: unsupported pickle protocol {}", what_, version);
        return;
      }
      case 0x95: reader_.u64(); return;  // FRAME: a size hint only
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop(); return;
      case '1': pop_to_mark(); return;
      case '2': push(top()); return;
      case 'N': push(PickleValue::make(Kind::None)); return;
      case 0x88: push(make_integer(Kind::Bool, 1)); return;
      case 0x89: push(make_integer(Kind::Bool, 0)); return;
      case 'J': push(make_integer(Kind::Int, static_cast<int32_t>(reader_.u32()))); return;
      case 'K': push(make_integer(Kind::Int, reader_.u8())); return;
      case 'M': push(make_integer(Kind::Int, reader_.u16())); return;
      case 0x8a: push(make_integer(Kind::Int, read_long(reader_.u8()))); return;
      case 'G': push(read_big_endian_double()); return;
      case 'X': push(make_text(Kind::String, reader_.u32())); return;
      case 0x8c: push(make_text(Kind::String, reader_.u8())); return;
      case 0x8d: push(make_text(Kind::String, reader_.u64())); return;
      case 'T': push(make_text(Kind::String, reader_.u32())); return;
      case 'U': push(make_text(Kind::String, reader_.u8())); return;
      case 'B': push(make_text(Kind::Bytes, reader_.u32())); return;
      case 'C': push(make_text(Kind::Bytes, reader_.u8())); return;
      case 0x8e: push(make_text(Kind::Bytes, reader_.u64())); return;
      case ')': push(PickleValue::make(Kind::Tuple)); return;
      case 't': push(make_sequence(Kind::Tuple, pop_to_mark())); return;
      case 0x85: push(make_sequence(Kind::Tuple, pop_n(1))); return;
      case 0x86: push(make_sequence(Kind::Tuple, pop_n(2))); return;
      case 0x87: push(make_sequence(Kind::Tuple, pop_n(3))); return;
      case ']': push(PickleValue::make(Kind::List)); return;
      case 'l': push(make_sequence(Kind::List, pop_to_mark())); return;
      case 'a': append(pop_n(1)); return;
      case 'e': append(pop_to_mark()); return;
      case '}': push(PickleValue::make(Kind::Dict)); return;
      case 'd': push(make_dict(pop_to_mark())); return;
      case 's': set_items(pop_n(2)); return;
      case 'u': set_items(pop_to_mark()); return;
      case 'c': {  // GLOBAL: "module\nname\n"
        const std::string module = read_line();
        push(make_global(module, read_line()));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        auto names = pop_n(2);
        expect_kind(names[0], Kind::String, "STACK_GLOBAL module");
        expect_kind(names[1], Kind::String, "STACK_GLOBAL name");
        push(make_global(names[0]->text, names[1]->text));
        return;
      }
      case 'R': reduce(); return;
      case 'b': build(); return;
      case 'Q': {  // BINPERSID
        auto persistent_id = pop();
        if (!hooks_.persistent_load) fail("{}: unexpected persistent id", what_);
        push(hooks_.persistent_load(persistent_id));
        return;
      }
      case 'q': memo_put(reader_.u8()); return;
      case 'r': memo_put(reader_.u32()); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'h': push(memo_get(reader_.u8())); return;
      case 'j': push(memo_get(reader_.u32())); return;
      default:
        fail("{}: unsupported pickle opcode 0x{:02x} at offset {}", what_, opcode, offset);
    }
  }

  static PickleRef make_integer(Kind kind, int64_t value) {
    auto result = PickleValue::make(kind);
    result->integer = value;
    return result;
  }

  PickleRef make_text(Kind kind, uint64_t length) {
    if (length > reader_.remaining()) {
      fail("{}: string of {} bytes runs past the end of the pickle", what_, length);
    }
    auto result = PickleValue::make(kind);
    result->text = reader_.string(static_cast<size_t>(length));
    return result;
  }

  static PickleRef make_sequence(Kind kind, std::vector<PickleRef> items) {
    auto result = PickleValue::make(kind);
    result->items = std::move(items);
    return result;
  }

  PickleRef make_dict(std::vector<PickleRef> items) {
    if (items.size() % 2 != 0) fail("{}: DICT with an odd number of items", what_);
    return make_sequence(Kind::Dict, std::move(items));
  }

  PickleRef make_global(const std::string& module, const std::string& name) {
    const std::string global = module + "." + name;
    if (!hooks_.allow_global || !hooks_.allow_global(global)) {
      fail("{}: pickle references global '{}', which is not allowed (only tensor-rebuilding "
           "globals are)",
           what_, global);
    }
    auto result = PickleValue::make(Kind::Global);
    result->text = global;
    return result;
  }

  int64_t read_long(uint8_t length) {
    if (length > 8) fail("{}: LONG1 of {} bytes does not fit in 64 bits", what_, length);
    if (length == 0) return 0;
    const unsigned char* bytes = reader_.take(length);
    uint64_t value = 0;
    for (int i = length - 1; i >= 0; --i) value = (value << 8) | bytes[i];
    if (length < 8 && (bytes[length - 1] & 0x80)) value |= ~uint64_t{0} << (8 * length);
    return static_cast<int64_t>(value);
  }

  PickleRef read_big_endian_double() {
    const unsigned char* bytes = reader_.take(8);
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | bytes[i];
    auto result = PickleValue::make(Kind::Float);
    std::memcpy(&result->number, &bits, 8);
    return result;
  }

  std::string read_line() {
    std::string line;
    while (true) {
      const char c = static_cast<char>(reader_.u8());
      if (c == '\n') return line;
      line += c;
      if (line.size() > 256) fail("{}: GLOBAL name longer than 256 bytes", what_);
    }
  }

  void append(std::vector<PickleRef> values) {
    PickleRef& list = top();
    expect_kind(list, Kind::List, "APPEND target");
    for (auto& value : values) list->items.push_back(std::move(value));
  }

  void set_items(std::vector<PickleRef> values) {
    if (values.size() % 2 != 0) fail("{}: SETITEMS with an odd number of items", what_);
    PickleRef& dict = top();
    expect_kind(dict, Kind::Dict, "SETITEM target");
    for (auto& value : values) dict->items.push_back(std::move(value));
  }

  void reduce() {
    auto arguments = pop();
    auto callable = pop();
    expect_kind(callable, Kind::Global, "REDUCE callable");
    expect_kind(arguments, Kind::Tuple, "REDUCE arguments");
    push(hooks_.call(callable->text, arguments));
  }

  void build() {
    auto state = pop();
    // OrderedDict state (state_dict._metadata) carries nothing the weights need.
    if (top()->kind != Kind::Dict) {
      fail("{}: BUILD on a {} is not supported", what_, pickle_kind_name(top()->kind));
    }
  }

  void memo_put(uint64_t index) {
    if (index >= kMaxMemo) fail("{}: memo index {} is too large", what_, index);
    memo_[index] = top();
  }

  PickleRef memo_get(uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end()) fail("{}: memo index {} was never stored", what_, index);
    return found->second;
  }

  void expect_kind(const PickleRef& value, Kind kind, const char* role) {
    if (value->kind != kind) {
      fail("{}: {} is a {}, expected a {}", what_, role, pickle_kind_name(value->kind),
           pickle_kind_name(kind));
    }
  }

  void push(PickleRef value) {
    if (stack_.size() >= kMaxStack) fail("{}: pickle stack overflow", what_);
    stack_.push_back(std::move(value));
  }

  PickleRef& top() {
    if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size())) {
      fail("{}: pickle stack underflow", what_);
    }
    return stack_.back();
  }

  PickleRef pop() {
    PickleRef value = top();
    stack_.pop_back();
    return value;
  }

  std::vector<PickleRef> pop_n(size_t count) {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + count) fail("{}: pickle stack underflow", what_);
    std::vector<PickleRef> values(stack_.end() - count, stack_.end());
    stack_.resize(stack_.size() - count);
    return values;
  }

  std::vector<PickleRef> pop_to_mark() {
    if (marks_.empty()) fail("{}: pickle pops to a MARK that was never set", what_);
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> values(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return values;
  }

  ByteReader reader_;
  const std::string& what_;
  const PickleHooks& hooks_;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
};

}  // namespace

const char* pickle_kind_name(PickleValue::Kind kind) {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Object: return "object";
  }
  return "?";
}

PickleRef unpickle(const unsigned char* data, size_t size, const std::string& what,
                   const PickleHooks& hooks) {
  return Machine(data, size, what, hooks).run();
}

}  // namespace trocr

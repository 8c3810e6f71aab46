// Reader for pytorch_model.bin as torch.save writes it since PyTorch 1.6: a zip archive with
// ARCHIVE/data.pkl (the pickled state dict) and ARCHIVE/data/KEY (one entry per storage).
#include <set>

#include "common/check.h"
#include "formats/checkpoint.h"
#include "formats/pickle.h"
#include "formats/zip_archive.h"

namespace trocr {
namespace {

using Kind = PickleValue::Kind;

struct Storage {
  DType dtype;
  const unsigned char* data;
  uint64_t element_count;
  std::string key;
};

struct TensorView {
  std::shared_ptr<Storage> storage;
  int64_t offset;
  std::vector<int64_t> size;
  std::vector<int64_t> stride;
};

bool storage_dtype(const std::string& global, DType* dtype) {
  static const std::pair<const char*, DType> kStorages[] = {
      {"torch.FloatStorage", DType::F32},  {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.DoubleStorage", DType::F64},
      {"torch.LongStorage", DType::I64},   {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},  {"torch.CharStorage", DType::I8},
      {"torch.ByteStorage", DType::U8},    {"torch.BoolStorage", DType::Bool}};
  for (const auto& [name, value] : kStorages) {
    if (global == name) {
      *dtype = value;
      return true;
    }
  }
  return false;
}

class TorchUnpickler {
 public:
  TorchUnpickler(const MappedFile& file, const ZipArchive& archive, std::string prefix)
      : file_(file), archive_(archive), prefix_(std::move(prefix)) {}

  PickleRef run(const ZipEntry& pickle) {
    PickleHooks hooks;
    hooks.allow_global = [](const std::string& global) {
      DType ignored;
      return global == "collections.OrderedDict" || global == "torch._utils._rebuild_tensor_v2" ||
             global == "torch._utils._rebuild_parameter" || storage_dtype(global, &ignored);
    };
    hooks.call = [this](const std::string& global, const PickleRef& arguments) {
      return call(global, arguments);
    };
    hooks.persistent_load = [this](const PickleRef& id) { return load_storage(id); };
    return unpickle(pickle.data, pickle.size, file_.path() + " (" + prefix_ + "data.pkl)", hooks);
  }

 private:
  PickleRef call(const std::string& global, const PickleRef& arguments) {
    const auto& items = arguments->items;
    if (global == "collections.OrderedDict") {
      if (!items.empty()) fail("{}: OrderedDict called with arguments", file_.path());
      return PickleValue::make(Kind::Dict);
    }
    if (global == "torch._utils._rebuild_parameter") {
      if (items.empty()) fail("{}: _rebuild_parameter without data", file_.path());
      return items[0];
    }
    if (global == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(items);
    fail("{}: global '{}' cannot be called", file_.path(), global);
  }

  PickleRef rebuild_tensor(const std::vector<PickleRef>& items) {
    if (items.size() < 4 || items[0]->kind != Kind::Object || items[1]->kind != Kind::Int ||
        items[2]->kind != Kind::Tuple || items[3]->kind != Kind::Tuple) {
      fail("{}: _rebuild_tensor_v2 expects (storage, offset, size, stride, ...)", file_.path());
    }
    auto view = std::make_shared<TensorView>();
    view->storage = std::static_pointer_cast<Storage>(items[0]->object);
    view->offset = items[1]->integer;
    view->size = integers(items[2], "size");
    view->stride = integers(items[3], "stride");
    if (view->size.size() != view->stride.size()) {
      fail("{}: tensor on storage {} has {} sizes but {} strides", file_.path(),
           view->storage->key, view->size.size(), view->stride.size());
    }
    auto value = PickleValue::make(Kind::Object);
    value->text = "tensor";
    value->object = view;
    return value;
  }

  std::vector<int64_t> integers(const PickleRef& tuple, const char* role) {
    std::vector<int64_t> values;
    for (const auto& item : tuple->items) {
      if (item->kind != Kind::Int || item->integer < 0) {
        fail("{}: tensor {} must hold non-negative integers", file_.path(), role);
      }
      values.push_back(item->integer);
    }
    return values;
  }

  // Torch's persistent id: ('storage', StorageType, key, location, element_count).
  PickleRef load_storage(const PickleRef& id) {
    const auto& items = id->items;
    if (id->kind != Kind::Tuple || items.size() != 5 || items[0]->kind != Kind::String ||
        items[0]->text != "storage" || items[1]->kind != Kind::Global ||
        items[2]->kind != Kind::String || items[4]->kind != Kind::Int) {
      fail("{}: persistent id is not a torch storage reference", file_.path());
    }
    const std::string& key = items[2]->text;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    auto storage = std::make_shared<Storage>();
    if (!storage_dtype(items[1]->text, &storage->dtype)) {
      fail("{}: storage {} has unsupported type {}", file_.path(), key, items[1]->text);
    }
    storage->key = key;
    storage->element_count = static_cast<uint64_t>(items[4]->integer);
    const ZipEntry* entry = archive_.find(prefix_ + "data/" + key);
    if (entry == nullptr) {
      fail("{}: storage {} has no zip entry '{}data/{}'", file_.path(), key, prefix_, key);
    }
    uint64_t needed;
    if (items[4]->integer < 0 ||
        !checked_mul(storage->element_count, dtype_size(storage->dtype), &needed) ||
        needed > entry->size) {
      fail("{}: storage {} claims {} {} elements but its entry holds {} bytes", file_.path(), key,
           items[4]->integer, dtype_name(storage->dtype), entry->size);
    }
    storage->data = entry->data;
    auto value = PickleValue::make(Kind::Object);
    value->text = "storage";
    value->object = storage;
    storages_[key] = value;
    return value;
  }

  const MappedFile& file_;
  const ZipArchive& archive_;
  std::string prefix_;
  std::map<std::string, PickleRef> storages_;
};

std::string find_archive_prefix(const MappedFile& file, const ZipArchive& archive) {
  std::string prefix;
  int found = 0;
  for (const auto& [name, entry] : archive.entries()) {
    const std::string suffix = "data.pkl";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(),
                                                     suffix) == 0) {
      const std::string candidate = name.substr(0, name.size() - suffix.size());
      if (candidate.find('/') == candidate.size() - 1 || candidate.empty()) {
        prefix = candidate;
        ++found;
      }
    }
  }
  if (found != 1) {
    fail("{}: expected one ARCHIVE/data.pkl entry in the zip archive, found {}", file.path(),
         found);
  }
  return prefix;
}

// Copies a strided view into a contiguous buffer, checking that it stays inside its storage.
TensorRecord materialize(const std::string& path, const std::string& name, const TensorView& view,
                         std::vector<std::vector<unsigned char>>* owned) {
  const Storage& storage = *view.storage;
  const size_t element_size = dtype_size(storage.dtype);
  TensorRecord record;
  record.dtype = storage.dtype;
  record.shape = view.size;
  uint64_t count = 1;
  uint64_t last = static_cast<uint64_t>(view.offset);
  bool contiguous = true;
  int64_t expected_stride = 1;
  for (size_t d = view.size.size(); d-- > 0;) {
    const uint64_t size = static_cast<uint64_t>(view.size[d]);
    uint64_t reach;
    if (!checked_mul(count, size, &count) || count > (uint64_t{1} << 48) ||
        (size > 0 && (!checked_mul(size - 1, static_cast<uint64_t>(view.stride[d]), &reach) ||
                      !checked_add(last, reach, &last)))) {
      fail("{}: tensor '{}' has an impossible shape {}", path, name, shape_string(view.size));
    }
    if (size != 1 && view.stride[d] != expected_stride) contiguous = false;
    expected_stride *= view.size[d];
  }
  if (count > 0 && last >= storage.element_count) {
    fail("{}: tensor '{}' {} at offset {} reads past its storage {} of {} elements", path, name,
         shape_string(view.size), view.offset, storage.key, storage.element_count);
  }
  record.nbytes = static_cast<size_t>(count * element_size);
  const unsigned char* base = storage.data + view.offset * element_size;
  if (contiguous || count == 0) {
    record.data = base;
    return record;
  }
  std::vector<unsigned char> buffer(record.nbytes);
  std::vector<int64_t> index(view.size.size(), 0);
  for (uint64_t i = 0; i < count; ++i) {
    int64_t source = 0;
    for (size_t d = 0; d < index.size(); ++d) source += index[d] * view.stride[d];
    std::memcpy(buffer.data() + i * element_size, base + source * element_size, element_size);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < view.size[d]) break;
      index[d] = 0;
    }
  }
  owned->push_back(std::move(buffer));
  record.data = owned->back().data();
  return record;
}

}  // namespace

Checkpoint read_torch_checkpoint(std::shared_ptr<MappedFile> file) {
  const std::string& path = file->path();
  ZipArchive archive(*file);
  const std::string prefix = find_archive_prefix(*file, archive);
  if (const ZipEntry* byteorder = archive.find(prefix + "byteorder")) {
    const std::string order(reinterpret_cast<const char*>(byteorder->data), byteorder->size);
    if (order != "little") fail("{}: byte order '{}' is not supported (little only)", path, order);
  }
  TorchUnpickler unpickler(*file, archive, prefix);
  const PickleRef root = unpickler.run(*archive.find(prefix + "data.pkl"));
  if (root->kind != Kind::Dict) {
    fail("{}: expected a state dict (a dict of tensors), found a {}", path,
         pickle_kind_name(root->kind));
  }
  Checkpoint checkpoint;
  checkpoint.path = path;
  for (size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const PickleRef& key = root->items[i];
    const PickleRef& value = root->items[i + 1];
    if (key->kind != Kind::String) fail("{}: state dict key is a {}", path, pickle_kind_name(key->kind));
    if (value->kind != Kind::Object || value->text != "tensor") {
      fail("{}: state dict entry '{}' is a {}, expected a tensor", path, key->text,
           value->kind == Kind::Object ? value->text : pickle_kind_name(value->kind));
    }
    const auto& view = *std::static_pointer_cast<TensorView>(value->object);
    checkpoint.tensors[key->text] = materialize(path, key->text, view, &checkpoint.owned_buffers);
  }
  checkpoint.file = std::move(file);
  return checkpoint;
}

}  // namespace trocr

#include "model/model_directory.h"

#include <sys/stat.h>

#include "common/check.h"

namespace trocr {
namespace {

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

std::string find_weights_file(const std::string& model_dir) {
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    const std::string path = model_dir + "/" + name;
    if (exists(path)) return path;
  }
  if (exists(model_dir + "/model.safetensors.index.json") ||
      exists(model_dir + "/pytorch_model.bin.index.json")) {
    fail("{}: sharded checkpoints are not supported; TrOCR models fit in one file (re-save with "
         "a larger max_shard_size)",
         model_dir);
  }
  fail("{}: no model.safetensors or pytorch_model.bin", model_dir);
}

ModelDirectory load_model_directory(const std::string& model_dir) {
  struct stat info {};
  if (::stat(model_dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    fail("{}: not a directory (expected a HF TrOCR checkpoint directory)", model_dir);
  }
  ModelDirectory directory;
  directory.path = model_dir;
  directory.config = load_model_config(model_dir);
  directory.generation = load_generation_config(model_dir, directory.config);
  directory.preprocess = load_preprocess_config(model_dir);
  directory.detokenizer = load_detokenizer(model_dir);
  const int image_height = directory.config.encoder.image_height;
  const int image_width = directory.config.encoder.image_width;
  if (directory.preprocess.do_resize &&
      (directory.preprocess.height != image_height || directory.preprocess.width != image_width)) {
    fail("{}: the image processor resizes to {}x{} but the encoder expects {}x{} (config.json)",
         directory.preprocess.source, directory.preprocess.width, directory.preprocess.height,
         image_width, image_height);
  }
  directory.weights_path = find_weights_file(model_dir);
  const Checkpoint checkpoint = read_checkpoint(directory.weights_path);
  directory.weights = load_weights(checkpoint, directory.config);
  return directory;
}

}  // namespace trocr

#pragma once
// Everything a HF TrOCR checkpoint directory holds, loaded and cross-checked.
#include <memory>
#include <string>

#include "model/weights.h"
#include "trocr/config.h"
#include "trocr/text.h"

namespace trocr {

struct ModelDirectory {
  std::string path;
  std::string weights_path;
  ModelConfig config;
  GenerationConfig generation;
  PreprocessConfig preprocess;
  std::unique_ptr<Detokenizer> detokenizer;
  ModelWeights weights;
};

// model.safetensors if present, else pytorch_model.bin; errors say what the directory lacks.
std::string find_weights_file(const std::string& model_dir);
ModelDirectory load_model_directory(const std::string& model_dir);

}  // namespace trocr

#pragma once
// HF generate()'s keyword arguments applied on top of a checkpoint's generation settings, as HF
// applies them (max_new_tokens wins over max_length). The Python package and the server's
// per-request settings both read them here.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trocr/config.h"

namespace trocr {

// The names accepted, in HF's spelling.
const std::vector<std::string>& generation_override_names();
// `overrides` is a JSON object; a trocr::Error names `context`, the key and what is wrong.
GenerationConfig apply_generation_overrides(GenerationConfig config, const nlohmann::json& overrides,
                                            const std::string& context);

}  // namespace trocr

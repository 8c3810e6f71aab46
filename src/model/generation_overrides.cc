#include "model/generation_overrides.h"

#include <fmt/ranges.h>

#include "common/check.h"

namespace trocr {

const std::vector<std::string>& generation_override_names() {
  static const std::vector<std::string> names = {"num_beams", "max_length", "max_new_tokens", "min_length",
                                                 "no_repeat_ngram_size", "length_penalty", "num_return_sequences",
                                                 "early_stopping"};
  return names;
}

GenerationConfig apply_generation_overrides(GenerationConfig config, const nlohmann::json& overrides,
                                            const std::string& context) {
  if (overrides.is_null()) return config;
  if (!overrides.is_object()) fail("{}: the generation settings must be an object, found {}", context, overrides.dump());
  for (const auto& [key, value] : overrides.items()) {
    auto integer = [&, &key = key, &value = value](int least) {
      if (!value.is_number_integer()) fail("{}: {} must be an integer, found {}", context, key, value.dump());
      const int64_t number = value.get<int64_t>();
      if (number < least || number > (1 << 20)) fail("{}: {} must be at least {}, found {}", context, key, least, number);
      return int(number);
    };
    if (key == "num_beams") {
      config.num_beams = integer(1);
    } else if (key == "max_length") {
      config.max_length = integer(1);
    } else if (key == "max_new_tokens") {
      config.max_new_tokens = integer(1);
    } else if (key == "min_length") {
      config.min_length = integer(0);
    } else if (key == "no_repeat_ngram_size") {
      config.no_repeat_ngram_size = integer(0);
    } else if (key == "num_return_sequences") {
      config.num_return_sequences = integer(1);
    } else if (key == "length_penalty") {
      if (!value.is_number()) fail("{}: length_penalty must be a number, found {}", context, value.dump());
      config.length_penalty = value.get<double>();
    } else if (key == "early_stopping") {
      if (value.is_boolean()) {
        config.early_stopping = value.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
      } else if (value == "never") {
        config.early_stopping = EarlyStopping::Never;
      } else {
        fail("{}: early_stopping must be true, false or \"never\", found {}", context, value.dump());
      }
    } else {
      fail("{}: '{}' is not a generation setting (known: {})", context, key,
           fmt::join(generation_override_names(), ", "));
    }
  }
  if (config.num_return_sequences > config.num_beams) {
    fail("{}: num_return_sequences ({}) is larger than num_beams ({})", context, config.num_return_sequences,
         config.num_beams);
  }
  return config;
}

}  // namespace trocr

// Generation settings with HF's precedence: generation_config.json when the directory has
// one; otherwise the legacy fields of config.json, where a field the outer config leaves unset
// is taken from the decoder's config (GenerationConfig.from_model_config).
#include <sys/stat.h>

#include "common/check.h"
#include "formats/json_file.h"
#include "trocr/config.h"

namespace trocr {

const char* early_stopping_name(EarlyStopping value) {
  switch (value) {
    case EarlyStopping::False: return "false";
    case EarlyStopping::True: return "true";
    case EarlyStopping::Never: return "never";
  }
  return "?";
}
namespace {

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// Looks a field up in the primary object, then in the fallback (if any).
class Lookup {
 public:
  Lookup(JsonFields primary, std::optional<JsonFields> fallback)
      : primary_(std::move(primary)), fallback_(std::move(fallback)) {}

  const JsonFields* find(const std::string& key) const {
    if (primary_.has(key)) return &primary_;
    if (fallback_ && fallback_->has(key)) return &*fallback_;
    return nullptr;
  }
  std::optional<int64_t> optional_int(const std::string& key) const {
    const JsonFields* fields = find(key);
    return fields ? fields->optional_int(key) : std::nullopt;
  }
  int get_int(const std::string& key, int fallback) const {
    const JsonFields* fields = find(key);
    return fields ? fields->get_int(key, fallback) : fallback;
  }
  double get_number(const std::string& key, double fallback) const {
    const JsonFields* fields = find(key);
    return fields ? fields->get_number(key, fallback) : fallback;
  }
  bool get_bool(const std::string& key, bool fallback) const {
    const JsonFields* fields = find(key);
    return fields ? fields->get_bool(key, fallback) : fallback;
  }

 private:
  JsonFields primary_;
  std::optional<JsonFields> fallback_;
};

EarlyStopping parse_early_stopping(const Lookup& lookup) {
  const JsonFields* fields = lookup.find("early_stopping");
  if (fields == nullptr) return EarlyStopping::False;
  const auto& value = fields->at("early_stopping");
  if (value.is_boolean()) return value.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
  if (value.is_string() && value.get<std::string>() == "never") return EarlyStopping::Never;
  fail("{} must be true, false or \"never\", found {}", fields->where("early_stopping"),
       value.dump());
}

// eos_token_id may be a list in newer files; one id is what TrOCR uses.
int parse_eos(const Lookup& lookup, int fallback) {
  const JsonFields* fields = lookup.find("eos_token_id");
  if (fields == nullptr) return fallback;
  const auto& value = fields->at("eos_token_id");
  if (value.is_array()) {
    if (value.size() != 1 || !value[0].is_number_integer()) {
      fail("{} lists {}; trocr-rt supports exactly one end-of-sequence token",
           fields->where("eos_token_id"), value.dump());
    }
    return value[0].get<int>();
  }
  return fields->get_int("eos_token_id", fallback);
}

// Options that change what HF generates and that trocr-rt does not implement.
void reject_unsupported(const Lookup& lookup) {
  auto reject_if = [&](const char* key, bool unsupported, const char* why) {
    const JsonFields* fields = lookup.find(key);
    if (fields != nullptr && unsupported) fail("{}: {}", fields->where(key), why);
  };
  reject_if("do_sample", lookup.get_bool("do_sample", false),
            "sampling is not supported (greedy and beam search are)");
  reject_if("num_beam_groups", lookup.get_int("num_beam_groups", 1) > 1,
            "group (diverse) beam search is not supported");
  reject_if("repetition_penalty", lookup.get_number("repetition_penalty", 1.0) != 1.0,
            "repetition_penalty is not supported");
  reject_if("encoder_no_repeat_ngram_size", lookup.get_int("encoder_no_repeat_ngram_size", 0) > 0,
            "encoder_no_repeat_ngram_size is not supported");
  for (const char* key : {"forced_bos_token_id", "forced_eos_token_id", "bad_words_ids",
                          "force_words_ids", "exponential_decay_length_penalty",
                          "sequence_bias", "constraints"}) {
    reject_if(key, true, "this generation option is not supported");
  }
  for (const char* key : {"suppress_tokens", "begin_suppress_tokens"}) {
    const JsonFields* fields = lookup.find(key);
    reject_if(key, fields != nullptr && !fields->at(key).empty(),
              "suppressing tokens is not supported");
  }
}

}  // namespace

int GenerationConfig::resolved_max_length(int prompt_length) const {
  if (max_new_tokens) return prompt_length + *max_new_tokens;
  if (max_length) return *max_length;
  return prompt_length + 20;
}

int GenerationConfig::resolved_min_length(int prompt_length) const {
  if (min_new_tokens) return prompt_length + *min_new_tokens;
  return min_length;
}

GenerationConfig load_generation_config(const std::string& model_dir, const ModelConfig& model) {
  const std::string generation_path = model_dir + "/generation_config.json";
  const std::string config_path = model_dir + "/config.json";
  nlohmann::json primary_json, decoder_json;
  std::optional<JsonFields> fallback;
  GenerationConfig config;
  if (file_exists(generation_path)) {
    primary_json = read_json_file(generation_path);
    config.source = generation_path;
  } else {
    primary_json = read_json_file(config_path);
    config.source = config_path + " (legacy fields)";
    if (primary_json.is_object() && primary_json.contains("decoder")) {
      decoder_json = primary_json["decoder"];
      fallback.emplace(decoder_json, config_path, "decoder");
    }
  }
  const Lookup lookup(JsonFields(primary_json, config.source), std::move(fallback));
  reject_unsupported(lookup);

  auto positive = [&](const char* key) -> std::optional<int> {
    const auto value = lookup.optional_int(key);
    if (value && *value <= 0) fail("{}: {} must be positive, found {}", config.source, key, *value);
    return value ? std::optional<int>(static_cast<int>(*value)) : std::nullopt;
  };
  config.max_length = positive("max_length");
  config.max_new_tokens = positive("max_new_tokens");
  config.min_length = lookup.get_int("min_length", 0);
  if (auto min_new = lookup.optional_int("min_new_tokens")) config.min_new_tokens = static_cast<int>(*min_new);
  config.num_beams = positive("num_beams").value_or(1);
  config.length_penalty = lookup.get_number("length_penalty", 1.0);
  config.early_stopping = parse_early_stopping(lookup);
  config.no_repeat_ngram_size = lookup.get_int("no_repeat_ngram_size", 0);
  config.num_return_sequences = positive("num_return_sequences").value_or(1);
  if (config.num_return_sequences > config.num_beams) {
    fail("{}: num_return_sequences ({}) is larger than num_beams ({})", config.source,
         config.num_return_sequences, config.num_beams);
  }
  config.tokens = model.tokens;
  config.tokens.decoder_start = lookup.get_int("decoder_start_token_id", model.tokens.decoder_start);
  config.tokens.bos = lookup.get_int("bos_token_id", model.tokens.bos);
  config.tokens.pad = lookup.get_int("pad_token_id", model.tokens.pad);
  config.tokens.eos = parse_eos(lookup, model.tokens.eos);
  return config;
}

}  // namespace trocr

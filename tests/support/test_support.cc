#include "support/test_support.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trocr/error.h"

namespace trocr::test {

std::string data_dir() { return TROCR_TEST_DATA_DIR; }

std::string model_dir(const std::string& variant) { return data_dir() + "/models/" + variant; }

std::vector<std::string> golden_variants() { return {"vit-char", "deit-bpe", "vit-proj"}; }

std::mt19937 seeded_generator() {
  const char* replay = std::getenv("TROCR_TEST_SEED");
  const uint32_t seed = replay != nullptr ? uint32_t(std::stoul(replay)) : std::random_device{}();
  std::printf("random inputs from seed %u (replay with TROCR_TEST_SEED=%u)\n", seed, seed);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return std::mt19937(seed);
}

ScratchDir::ScratchDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  root_ = std::string(TROCR_TEST_SCRATCH_DIR) + "/" + info->test_suite_name() + "." +
          info->name() + "." + std::to_string(::getpid());
  std::filesystem::remove_all(root_);
  std::filesystem::create_directories(root_);
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!stream) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot read " + path);
  std::ostringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

void copy_file(const std::string& from, const std::string& to) { write_file(to, read_file(from)); }

void copy_model_dir(const std::string& variant, const std::string& to) {
  std::filesystem::create_directories(to);
  for (const auto& entry : std::filesystem::directory_iterator(model_dir(variant))) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("golden", 0) == 0) continue;
    copy_file(entry.path().string(), to + "/" + name);
  }
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

void write_json(const std::string& path, const nlohmann::json& json) {
  write_file(path, json.dump(2));
}

std::string safetensors_bytes(const nlohmann::json& header, const std::string& data) {
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';
  const uint64_t length = text.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &length, 8);
  return bytes + text + data;
}

void write_safetensors(const std::string& path, const Checkpoint& checkpoint,
                       const std::vector<std::string>& drop) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, record] : checkpoint.tensors) {
    if (std::find(drop.begin(), drop.end(), name) != drop.end()) continue;
    header[name] = {{"dtype", dtype_name(record.dtype)},
                    {"shape", record.shape},
                    {"data_offsets", {data.size(), data.size() + record.nbytes}}};
    data.append(reinterpret_cast<const char*>(record.data), record.nbytes);
  }
  write_file(path, safetensors_bytes(header, data));
}

GenerationConfig case_settings(const std::string& name, GenerationConfig config) {
  if (name == "checkpoint_default") return config;
  config.max_length = 16;
  config.no_repeat_ngram_size = 0;
  if (name == "greedy") {
    config.num_beams = 1;
  } else if (name == "greedy_min4") {
    config.num_beams = 1;
    config.min_length = 4;
  } else if (name == "greedy_norepeat2") {
    config.num_beams = 1;
    config.no_repeat_ngram_size = 2;
  } else if (name == "beam3_lp1_return2") {
    config.num_beams = 3;
    config.length_penalty = 1.0;
    config.early_stopping = EarlyStopping::False;
    config.num_return_sequences = 2;
  } else if (name == "beam4_chinese") {
    config.num_beams = 4;
    config.length_penalty = 2.0;
    config.early_stopping = EarlyStopping::True;
    config.no_repeat_ngram_size = 3;
  } else if (name == "beam2_never_min5") {
    config.num_beams = 2;
    config.max_length = 14;
    config.early_stopping = EarlyStopping::Never;
    config.min_length = 5;
    config.length_penalty = 0.5;
  } else if (name == "beam5_lp-1") {
    config.num_beams = 5;
    config.max_new_tokens = 9;
    config.length_penalty = -1.0;
    config.early_stopping = EarlyStopping::False;
  } else {
    ADD_FAILURE() << "unknown golden case " << name;
  }
  return config;
}

GoldenImages read_golden_images(const nlohmann::json& record) {
  GoldenImages golden;
  for (const auto& [image, entry] : record.at("images").items()) {
    golden.names.push_back(image);
    golden.images.push_back(read_image_file(data_dir() + "/images/" + image));
  }
  return golden;
}

std::vector<float> golden_tensor(const Checkpoint& golden, const std::string& name) {
  const TensorRecord* record = golden.find(name);
  if (record == nullptr) {
    ADD_FAILURE() << "golden tensor " << name << " missing";
    return {};
  }
  const float* data = reinterpret_cast<const float*>(record->data);
  return std::vector<float>(data, data + record->element_count());
}

double relative_error(const std::vector<float>& ours, const std::vector<float>& reference) {
  if (ours.size() != reference.size()) return INFINITY;
  double worst = 0.0, scale = 1e-30;
  for (size_t i = 0; i < reference.size(); ++i) {
    if (!std::isfinite(ours[i])) return INFINITY;
    worst = std::max(worst, std::fabs(double(ours[i]) - reference[i]));
    scale = std::max(scale, std::fabs(double(reference[i])));
  }
  return worst / scale;
}

namespace {

void put16(std::string& out, uint16_t value) { out.append(reinterpret_cast<char*>(&value), 2); }
void put32(std::string& out, uint32_t value) { out.append(reinterpret_cast<char*>(&value), 4); }

}  // namespace

std::string zip_bytes(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, directory;
  for (const auto& [name, contents] : entries) {
    const uint32_t offset = static_cast<uint32_t>(out.size());
    put32(out, 0x04034b50);
    put16(out, 20); put16(out, 0); put16(out, 0); put16(out, 0); put16(out, 0);
    put32(out, 0);  // crc (not checked by the reader, as torch does not either)
    put32(out, contents.size()); put32(out, contents.size());
    put16(out, name.size()); put16(out, 0);
    out += name + contents;
    put32(directory, 0x02014b50);
    put16(directory, 20); put16(directory, 20); put16(directory, 0); put16(directory, 0);
    put16(directory, 0); put16(directory, 0); put32(directory, 0);
    put32(directory, contents.size()); put32(directory, contents.size());
    put16(directory, name.size()); put16(directory, 0); put16(directory, 0);
    put16(directory, 0); put16(directory, 0); put32(directory, 0); put32(directory, offset);
    directory += name;
  }
  const uint32_t directory_offset = static_cast<uint32_t>(out.size());
  out += directory;
  put32(out, 0x06054b50);
  put16(out, 0); put16(out, 0); put16(out, entries.size()); put16(out, entries.size());
  put32(out, directory.size()); put32(out, directory_offset); put16(out, 0);
  return out;
}

}  // namespace trocr::test

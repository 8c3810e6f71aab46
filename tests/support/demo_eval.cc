#include "support/demo_eval.h"

#include <gtest/gtest.h>

#include "evaluation/labeled_dataset.h"
#include "evaluation/text_metrics.h"
#include "support/in_flight.h"
#include "support/test_support.h"

namespace trocr::test {

std::string demo_model_dir() { return std::string(TROCR_SOURCE_DIR) + "/models/demo"; }
std::string demo_dataset_dir() { return std::string(TROCR_SOURCE_DIR) + "/data/synth-eval"; }

GenerationConfig demo_generation(const Recognizer& recognizer, const std::string& setting) {
  GenerationConfig generation = recognizer.default_generation();
  if (setting.rfind("greedy", 0) == 0) generation.num_beams = 1;
  return generation;
}

DemoComparison compare_demo_with_hf(const EngineOptions& options, const std::string& setting, size_t limit,
                                    const AfterStep& after_step) {
  const nlohmann::json hf = read_json(data_dir() + "/demo/hf_synth_eval.json");
  std::vector<LabeledImage> dataset = read_labeled_dataset(demo_dataset_dir());
  if (limit > 0 && limit < dataset.size()) dataset.resize(limit);
  const Recognizer recognizer(demo_model_dir(), options);
  const GenerationConfig generation = demo_generation(recognizer, setting);
  const bool in_flight = setting == "greedy in flight";
  const std::string reference_setting = in_flight ? "greedy" : setting;

  DemoComparison comparison;
  TextScore ours_score, hf_score;
  // In flight, every image goes to one stream: lines of all lengths join and leave it.
  const size_t batch = in_flight ? dataset.size() : std::max(1, options.batch_size);
  for (size_t first = 0; first < dataset.size(); first += batch) {
    const size_t end = std::min(dataset.size(), first + batch);
    std::vector<RgbImage> images;
    for (size_t i = first; i < end; ++i) images.push_back(read_image_file(dataset[i].path));
    const std::vector<Recognition> results =
        in_flight ? recognize_in_flight(recognizer, images, generation, std::max(1, options.batch_size), 0, after_step)
                        .results
                  : recognizer.recognize(images, generation);
    for (size_t i = first; i < end; ++i) {
      const std::string name = dataset[i].path.substr(dataset[i].path.rfind('/') + 1);
      const nlohmann::json& line = hf.at("lines").at(name);
      EXPECT_EQ(line.at("label").get<std::string>(), dataset[i].label) << name;
      const nlohmann::json& reference = line.at(reference_setting);
      const TextCandidate& best = results[i - first].best();
      const std::string hf_text = reference.at("text").get<std::string>();
      ++comparison.lines;
      comparison.identical_text += best.text == hf_text;
      const auto hf_ids = reference.at("ids").get<std::vector<int>>();
      comparison.identical_ids += best.ids == hf_ids;
      if (best.ids != hf_ids) comparison.different_ids.push_back({dataset[i].path, best.ids, hf_ids});
      if (best.text != hf_text) comparison.differences.push_back(name + ": ours '" + best.text + "' hf '" + hf_text + "'");
      ours_score.add(best.text, dataset[i].label);
      hf_score.add(hf_text, dataset[i].label);
    }
  }
  comparison.cer = ours_score.character_error_rate();
  comparison.hf_cer = hf_score.character_error_rate();
  return comparison;
}

}  // namespace trocr::test

#pragma once
// The demo model (models/demo) on the committed evaluation set (data/synth-eval), compared line
// by line with what HF's generate() produced for it (tests/data/demo/hf_synth_eval.json, made by
// python/hf_eval.py on the GPU machine).
#include <string>
#include <vector>

#include "support/in_flight.h"
#include "trocr/recognizer.h"

namespace trocr::test {

std::string demo_model_dir();
std::string demo_dataset_dir();

struct DemoComparison {
  size_t lines = 0;
  size_t identical_text = 0;  // same text as HF fp32
  size_t identical_ids = 0;   // same ids as HF fp32
  double cer = 0.0;           // against the labels
  double hf_cer = 0.0;        // HF's, on the same lines
  std::vector<std::string> differences;  // "NAME: ours 'x' hf 'y'"
  struct DifferentIds {
    std::string path;
    std::vector<int> ours, hf;
  };
  std::vector<DifferentIds> different_ids;
};

// The settings of a comparison: the checkpoint's own, with one beam for "greedy".
GenerationConfig demo_generation(const Recognizer& recognizer, const std::string& setting);

// `setting` is "default" (the checkpoint's generation settings: beam 4), "greedy", or
// "greedy in flight" (greedy lines through Recognizer::open_stream with options.batch_size lines,
// each freed line taking the next image between steps, after_step told of each step as
// recognize_in_flight tells it); the first `limit` lines are read (0: all).
DemoComparison compare_demo_with_hf(const EngineOptions& options, const std::string& setting, size_t limit,
                                    const AfterStep& after_step = {});


// Sanitizer builds run ~20x slower: they check a prefix of the set.
constexpr size_t kSanitizedDemoLines = 16;
#ifdef TROCR_SANITIZED_BUILD
constexpr bool kSanitizedBuild = true;
#else
constexpr bool kSanitizedBuild = false;
#endif

}  // namespace trocr::test

#pragma once
// Lines in flight through Recognizer::open_stream, driven the way the server's batcher drives them.
#include <functional>
#include <vector>

#include "trocr/recognizer.h"

namespace trocr::test {

// Recognizes `images` as lines in flight: up to `capacity` at once, admitted between steps as
// lines end (at most `per_step` at a time; 0: as many as are free), as `trocr serve --batching
// in-flight` runs them; after_step (if any) is told after each step how many images were
// admitted so far. Results in the images' order, and the most lines that ran at once.
using AfterStep = std::function<void(size_t admitted)>;
struct InFlightResult {
  std::vector<Recognition> results;
  int most_active = 0;
};
InFlightResult recognize_in_flight(const Recognizer& recognizer, const std::vector<RgbImage>& images,
                                   const GenerationConfig& generation, int capacity, size_t per_step = 0,
                                   const AfterStep& after_step = {});

}  // namespace trocr::test

#include "support/in_flight.h"

#include <algorithm>
#include <map>

#include "trocr/error.h"

namespace trocr::test {

InFlightResult recognize_in_flight(const Recognizer& recognizer, const std::vector<RgbImage>& images,
                                   const GenerationConfig& generation, int capacity, size_t per_step,
                                   const AfterStep& after_step) {
  const auto stream = recognizer.open_stream(generation, capacity);
  if (!stream) throw Error("this engine runs no lines in flight");
  if (stream->capacity() != capacity) throw Error("the stream has the wrong capacity");
  InFlightResult in_flight;
  std::vector<Recognition>& results = in_flight.results;
  results.resize(images.size());
  std::map<int, size_t> line_image;
  size_t next = 0, ended = 0;
  while (ended < images.size()) {
    size_t admitted = std::min(images.size() - next, size_t(stream->capacity() - stream->active()));
    if (per_step > 0) admitted = std::min(admitted, per_step);
    if (admitted > 0) {
      const std::vector<RgbImage> joining(images.begin() + next, images.begin() + next + admitted);
      const std::vector<int> lines = stream->admit(joining);
      for (size_t i = 0; i < lines.size(); ++i) line_image[lines[i]] = next + i;
      next += admitted;
    }
    in_flight.most_active = std::max(in_flight.most_active, stream->active());
    for (auto& [line, recognition] : stream->step()) {
      results[line_image.at(line)] = std::move(recognition);
      line_image.erase(line);
      ++ended;
    }
    if (after_step) after_step(next);
  }
  if (stream->active() != 0) throw Error("lines still active after every image ended");
  return in_flight;
}

}  // namespace trocr::test

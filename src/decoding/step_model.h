#pragma once
// What decoding needs from a model, and nothing about TrOCR: a set of sequence slots that
// advance one token at a time over a cache, and cache reordering for beam search.
#include <vector>

namespace trocr {

class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual int vocab_size() const = 0;
  // The longest sequence (start token included) the model can hold.
  virtual int max_length() const = 0;
  // Opens one slot per entry; slot s decodes source (image) slot_sources[s]. Resets caches.
  virtual void begin(const std::vector<int>& slot_sources) = 0;
  // Feeds tokens[i] to slot slots[i] at `position` (tokens before it in that slot) and writes
  // the next-token logits: [slots.size(), vocab_size] fp32.
  virtual void step(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
                    float* logits) = 0;
  // Beam reordering: slot slots[i] takes the cache that slot sources[i] had (positions before
  // `position`). All sources are read before any slot is written.
  virtual void reorder(const std::vector<int>& slots, const std::vector<int>& sources,
                       int position) = 0;

};

}  // namespace trocr

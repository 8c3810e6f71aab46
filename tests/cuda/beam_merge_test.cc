// beam_merge (HF's beam bookkeeping on the GPU) against advance_beams (its host reference,
// src/decoding/beam_state.h) directly: random beam states and candidates, several steps in a
// row, every setting HF's stopping rules distinguish, 2 to 16 beams. Each step's whole state
// must agree exactly: running sequences and scores, the caches' parents, the finished sets
// (ids, scores, sums, done), the early-stop heuristic, the frozen flags and the stop flag.
// Lines in flight (each image at its own length, no whole-batch rule) must agree with
// advance_beams run for each image alone.
#include <algorithm>
#include <cmath>
#include <random>

#include "cuda/device_buffer.h"
#include "cuda/kernels/kernels.h"
#include "decoding/beam_state.h"
#include "support/gpu_test.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

using cuda::DeviceBuffer;

constexpr int kEos = 2, kVocab = 9;  // a small vocabulary: eos and repeated tokens are common

struct DeviceState {
  DeviceBuffer<int> history, history_scratch, finished_ids, finished_ids_scratch, finished_lengths, finished_done,
      improvement, flags, parents, tokens, row_images, position;
  DeviceBuffer<float> running, finished_scores, finished_sums, denominators, values;
};

// A random mid-search state for each image: `length` tokens per running beam, finished sets
// holding some ended sequences (best first or not) and some empty places.
std::vector<BeamState> random_states(int images, int beams, int length, std::mt19937& generator) {
  std::uniform_int_distribution<int> token(0, kVocab - 1), chance(0, 3);
  std::uniform_real_distribution<float> score(-12.0f, -0.5f);
  std::vector<BeamState> states(images);
  for (BeamState& state : states) {
    for (int b = 0; b < beams; ++b) {
      std::vector<int> sequence = {kEos};
      while (static_cast<int>(sequence.size()) < length) sequence.push_back(token(generator));
      state.running.push_back(sequence);
      state.running_scores.push_back(b == 0 || chance(generator) > 0 ? score(generator) : kBeamSentinel);
      FinishedBeam finished;
      if (length > 2 && chance(generator) < 2) {
        finished.ids.assign(sequence.begin(), sequence.begin() + 2 + chance(generator) % (length - 2));
        finished.ids.push_back(kEos);
        finished.score = std::round(score(generator) * 4.0f) / 4.0f;  // ties with candidates happen
        finished.sum_log_probability = score(generator);
        finished.done = true;
      }
      state.finished.push_back(finished);
    }
    state.improvement_possible = chance(generator) > 0;
    state.frozen = !state.improvement_possible && chance(generator) < 2;
  }
  return states;
}

SearchOptions beam_options(int beams, int max_length, EarlyStopping early_stopping, double length_penalty) {
  SearchOptions options;
  options.num_beams = beams;
  options.max_length = max_length;
  options.eos = kEos;
  options.early_stopping = early_stopping;
  options.length_penalty = length_penalty;
  return options;
}

// The states, and the length penalty's denominators, on the device.
void upload(const std::vector<BeamState>& states, const SearchOptions& options, DeviceState& device) {
  const int beams = options.num_beams, max_length = options.max_length;
  std::vector<float> denominators(max_length + 1);
  for (int l = 0; l <= max_length; ++l) denominators[l] = length_penalty_denominator(l, options.length_penalty);
  device.denominators.upload(denominators);
  const int images = static_cast<int>(states.size()), slots = images * beams;
  std::vector<int> history(size_t(slots) * max_length, 1), finished_ids(history.size(), 1), lengths(slots), done(slots);
  std::vector<float> running(slots), scores(slots), sums(slots);
  std::vector<int> improvement(images), flags(1 + images, 0);
  for (int i = 0; i < images; ++i) {
    for (int b = 0; b < beams; ++b) {
      const int slot = i * beams + b;
      std::copy(states[i].running[b].begin(), states[i].running[b].end(), history.begin() + slot * max_length);
      const FinishedBeam& f = states[i].finished[b];
      std::copy(f.ids.begin(), f.ids.end(), finished_ids.begin() + slot * max_length);
      lengths[slot] = static_cast<int>(f.ids.size());
      done[slot] = f.done;
      running[slot] = states[i].running_scores[b];
      scores[slot] = f.score;
      sums[slot] = f.sum_log_probability;
    }
    improvement[i] = states[i].improvement_possible;
    flags[1 + i] = states[i].frozen;
  }
  device.history.upload(history);
  device.history_scratch.resize(history.size());
  device.finished_ids.upload(finished_ids);
  device.finished_ids_scratch.resize(history.size());
  device.finished_lengths.upload(lengths);
  device.finished_done.upload(done);
  device.running.upload(running);
  device.finished_scores.upload(scores);
  device.finished_sums.upload(sums);
  device.improvement.upload(improvement);
  device.flags.upload(flags);
  device.parents.resize(slots);
}

// The device's state against the host's, image by image.
// A step's expected stop flag and parents: reorder_slots[r] (an image's slot) takes the cache of
// reorder_sources[r] % beams within the image.
struct ExpectedStep {
  bool stop = false;
  std::vector<int> reorder_slots, reorder_sources;
};

void expect_same_state(const std::vector<BeamState>& states, const std::vector<int>& active, const ExpectedStep& step,
                       int beams, int max_length, DeviceState& device, const std::string& where) {
  const auto history = device.history.download(), finished_ids = device.finished_ids.download();
  const auto lengths = device.finished_lengths.download(), done = device.finished_done.download();
  const auto running = device.running.download(), scores = device.finished_scores.download();
  const auto sums = device.finished_sums.download();
  const auto parents = device.parents.download();
  const auto improvement = device.improvement.download(), flags = device.flags.download();
  EXPECT_EQ(flags[0] != 0, step.stop) << where << ": the stop flag";
  for (size_t i = 0; i < states.size(); ++i) {
    const std::string image = where + " image " + std::to_string(i);
    EXPECT_EQ(flags[1 + i] != 0, states[i].frozen) << image << ": frozen";
    EXPECT_EQ(improvement[i] != 0, states[i].improvement_possible) << image << ": improvement possible";
    const bool moved = std::find(active.begin(), active.end(), int(i)) != active.end();
    for (int b = 0; b < beams; ++b) {
      const int slot = int(i) * beams + b;
      const std::string beam = image + " beam " + std::to_string(b);
      const int* sequence = history.data() + slot * max_length;
      EXPECT_EQ(std::vector<int>(sequence, sequence + states[i].running[b].size()), states[i].running[b]) << beam;
      EXPECT_EQ(running[slot], states[i].running_scores[b]) << beam;
      const FinishedBeam& f = states[i].finished[b];
      const int* ids = finished_ids.data() + slot * max_length;
      EXPECT_EQ(std::vector<int>(ids, ids + lengths[slot]), f.ids) << beam << ": finished ids";
      EXPECT_EQ(scores[slot], f.score) << beam << ": finished score";
      EXPECT_EQ(done[slot] != 0, f.done) << beam << ": finished done";
      if (f.done) {
        EXPECT_EQ(sums[slot], f.sum_log_probability) << beam << ": finished sum";
      }
    }
    if (!moved) continue;
    for (size_t r = 0; r < step.reorder_slots.size(); ++r) {
      if (step.reorder_slots[r] / beams != int(i)) continue;
      EXPECT_EQ(parents[step.reorder_slots[r]], step.reorder_sources[r] % beams) << image << ": parent";
    }
  }
}

// Each active image's rows' 2 * beams candidates, best first, on a coarse grid (ties happen).
void random_candidates(const std::vector<int>& active, int beams, std::mt19937& generator, std::vector<float>& values,
                       std::vector<int>& tokens, std::vector<int>& row_images) {
  const int keep = 2 * beams, rows = static_cast<int>(active.size()) * beams;
  std::uniform_int_distribution<int> token(0, kVocab - 1);
  std::uniform_real_distribution<float> value(-16.0f, -0.5f);
  values.assign(size_t(rows) * keep, 0.0f);
  tokens.assign(values.size(), 0);
  row_images.assign(rows, 0);
  for (int r = 0; r < rows; ++r) {
    row_images[r] = active[r / beams];
    for (int c = 0; c < keep; ++c) {
      values[r * keep + c] = std::round(value(generator) * 2.0f) / 2.0f;
      tokens[r * keep + c] = token(generator);
    }
    std::sort(values.begin() + r * keep, values.begin() + (r + 1) * keep, std::greater<float>());
  }
}

TEST(CudaBeamMerge, MatchesTheHostBookkeepingStateForState) {
  TROCR_SKIP_WITHOUT_GPU();
  std::mt19937 generator = seeded_generator();
  const int images = 5, max_length = 12;
  int trials = 0;
  for (int beams : {2, 3, 4, 16}) {
    for (EarlyStopping early : {EarlyStopping::False, EarlyStopping::True, EarlyStopping::Never}) {
      for (double penalty : {1.0, 2.0, 0.0, -0.5}) {
        for (int start : {1, 4, 9}) {
          const SearchOptions options = beam_options(beams, max_length, early, penalty);
          std::vector<BeamState> states = random_states(images, beams, start, generator);
          DeviceState device;
          upload(states, options, device);
          for (int length = start; length + 1 < max_length; ++length) {
            std::vector<int> active;
            for (int i = 0; i < images; ++i) {
              if (!states[i].frozen) active.push_back(i);
            }
            if (active.empty()) break;
            std::vector<float> values;
            std::vector<int> tokens, row_images;
            random_candidates(active, beams, generator, values, tokens, row_images);
            const std::string where = "beams " + std::to_string(beams) + " early_stopping " +
                                      std::to_string(int(early)) + " penalty " + std::to_string(penalty) +
                                      " length " + std::to_string(length);
            device.values.upload(values);
            device.tokens.upload(tokens);
            device.row_images.upload(row_images);
            device.position.upload(std::vector<int>{length - 1});
            const cuda::BeamMergeParams merge{
                static_cast<int>(active.size()), device.row_images.data(), images, beams, device.values.data(),
                device.tokens.data(), {device.position.data()}, max_length, kEos, early == EarlyStopping::True,
                early == EarlyStopping::Never, penalty, device.denominators.data(), device.history.data(),
                device.history_scratch.data(), device.running.data(), device.parents.data(),
                device.finished_ids.data(), device.finished_ids_scratch.data(), device.finished_lengths.data(),
                device.finished_scores.data(), device.finished_sums.data(), device.finished_done.data(),
                device.improvement.data(), device.flags.data()};
            cuda::beam_merge(merge, nullptr);
            const BeamStep step = advance_beams(states, active, values.data(), tokens.data(), length, options);
            expect_same_state(states, active, {step.stop, step.reorder_slots, step.reorder_sources}, beams, max_length,
                              device, where);
            ++trials;
            if (step.stop || HasFailure()) break;
          }
          if (HasFailure()) return;
        }
      }
    }
  }
  std::printf("beam_merge agreed with advance_beams on %d steps\n", trials);
}

// Lines in flight: images at different lengths in one launch, each image's position its own
// (StepPositions per row), no whole-batch rule. Each must move as advance_beams moves it alone,
// and freeze when that image alone would stop; the stop flag stays clear.
TEST(CudaBeamMerge, LinesInFlightMatchEachImageAlone) {
  TROCR_SKIP_WITHOUT_GPU();
  std::mt19937 generator = seeded_generator();
  const int images = 6, max_length = 12;
  std::uniform_int_distribution<int> start_length(1, max_length - 3);
  int trials = 0;
  for (int beams : {2, 4, 16}) {
    for (EarlyStopping early : {EarlyStopping::False, EarlyStopping::True, EarlyStopping::Never}) {
      for (double penalty : {1.0, 2.0, -0.5}) {
        const SearchOptions options = beam_options(beams, max_length, early, penalty);
        std::vector<BeamState> states;
        std::vector<int> lengths;
        for (int i = 0; i < images; ++i) {
          lengths.push_back(start_length(generator));
          states.push_back(random_states(1, beams, lengths.back(), generator)[0]);
        }
        DeviceState device;
        upload(states, options, device);
        for (int step_index = 0;; ++step_index) {
          std::vector<int> active, positions(images);
          for (int i = 0; i < images; ++i) {
            positions[i] = lengths[i] - 1;
            // Up to the last step, where every candidate stops at max_length.
            if (!states[i].frozen && lengths[i] < max_length) active.push_back(i);
          }
          if (active.empty()) break;
          std::vector<float> values;
          std::vector<int> tokens, row_images;
          random_candidates(active, beams, generator, values, tokens, row_images);
          device.values.upload(values);
          device.tokens.upload(tokens);
          device.row_images.upload(row_images);
          device.position.upload(positions);
          cuda::BeamMergeParams merge{
              static_cast<int>(active.size()), device.row_images.data(), images, beams, device.values.data(),
              device.tokens.data(), {device.position.data(), device.row_images.data()}, max_length, kEos,
              early == EarlyStopping::True, early == EarlyStopping::Never, penalty, device.denominators.data(),
              device.history.data(), device.history_scratch.data(), device.running.data(), device.parents.data(),
              device.finished_ids.data(), device.finished_ids_scratch.data(), device.finished_lengths.data(),
              device.finished_scores.data(), device.finished_sums.data(), device.finished_done.data(),
              device.improvement.data(), device.flags.data()};
          merge.whole_batch = false;
          cuda::beam_merge(merge, nullptr);
          ExpectedStep expected;  // the stop flag stays clear
          const int keep = 2 * beams;
          for (size_t a = 0; a < active.size(); ++a) {
            const int image = active[a];
            std::vector<BeamState> alone = {states[image]};
            const BeamStep step = advance_beams(alone, {0}, values.data() + a * beams * keep,
                                                tokens.data() + a * beams * keep, lengths[image], options);
            states[image] = alone[0];
            states[image].frozen = step.stop;  // alone, the whole-batch rule is the image's own
            for (size_t r = 0; r < step.reorder_slots.size(); ++r) {
              expected.reorder_slots.push_back(image * beams + step.reorder_slots[r]);
              expected.reorder_sources.push_back(step.reorder_sources[r]);
            }
            ++lengths[image];
          }
          expect_same_state(states, active, expected, beams, max_length, device,
                            "in flight, beams " + std::to_string(beams) + " early_stopping " +
                                std::to_string(int(early)) + " penalty " + std::to_string(penalty) + " step " +
                                std::to_string(step_index));
          ++trials;
          if (HasFailure()) return;
        }
      }
    }
  }
  std::printf("beam_merge in flight agreed with advance_beams image by image on %d steps\n", trials);
}

}  // namespace
}  // namespace trocr::test

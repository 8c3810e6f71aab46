// The service's dynamic batcher with a stand-in engine that records the batches it is given.
#include <atomic>
#include <stdexcept>

#include "serve/request_batcher.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

using namespace std::chrono_literals;

// Each image's width identifies it; the engine answers with that number as text.
RgbImage numbered_image(int number) {
  RgbImage image;
  image.width = number;
  image.height = 1;
  return image;
}

struct RecordingEngine {
  std::mutex mutex;
  std::vector<std::vector<int>> batches;
  RequestBatcher::Engine engine() {
    return [this](const std::vector<RgbImage>& images) {
      std::vector<Recognition> results;
      std::vector<int> batch;
      for (const RgbImage& image : images) {
        batch.push_back(image.width);
        Recognition recognition;
        recognition.candidates.push_back(TextCandidate{std::to_string(image.width), {}, 0, 0, 0});
        results.push_back(recognition);
      }
      std::lock_guard<std::mutex> lock(mutex);
      batches.push_back(batch);
      return results;
    };
  }
};

std::vector<RgbImage> images(std::initializer_list<int> numbers) {
  std::vector<RgbImage> list;
  for (int number : numbers) list.push_back(numbered_image(number));
  return list;
}

TEST(RequestBatcher, JoinsRequestsIntoBatchesOfAtMostMaxBatch) {
  RecordingEngine engine;
  RequestBatcher batcher(engine.engine(), {3, 10s, 100});
  auto first = batcher.submit(images({1, 2}));
  auto second = batcher.submit(images({3, 4}));
  ASSERT_TRUE(first && second);
  // The first three images fill a batch at once; the fourth waits for its deadline or the drain.
  EXPECT_EQ((*first)[0].get().recognition.best().text, "1");
  EXPECT_EQ((*second)[0].get().batch_size, 3);
  batcher.drain();
  EXPECT_EQ((*second)[1].get().recognition.best().text, "4");
  ASSERT_EQ(engine.batches.size(), 2u);
  EXPECT_EQ(engine.batches[0], (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(engine.batches[1], (std::vector<int>{4}));
}

TEST(RequestBatcher, RunsAPartialBatchWhenTheOldestImageHasWaitedMaxWait) {
  RecordingEngine engine;
  RequestBatcher batcher(engine.engine(), {8, 20ms, 100});
  auto lone = batcher.submit(images({7}));
  ASSERT_TRUE(lone);
  const BatchedResult result = (*lone)[0].get();  // no drain: only the deadline can start it
  EXPECT_EQ(result.batch_size, 1);
  EXPECT_GE(result.queue_ms, 15.0);
}

TEST(RequestBatcher, RefusesWholeRequestsThatDoNotFitTheQueue) {
  RecordingEngine engine;
  RequestBatcher batcher(engine.engine(), {8, 10s, 3});
  auto fits = batcher.submit(images({1, 2}));
  EXPECT_TRUE(fits);
  EXPECT_FALSE(batcher.submit(images({3, 4})));  // 4 > 3: none of it is queued
  EXPECT_EQ(batcher.queued(), 2u);
  EXPECT_TRUE(batcher.submit(images({5})));
  batcher.drain();
  EXPECT_FALSE(batcher.submit(images({6})));  // draining: nothing new
  ASSERT_EQ(engine.batches.size(), 1u);
  EXPECT_EQ(engine.batches[0], (std::vector<int>{1, 2, 5}));
}

TEST(RequestBatcher, AnEngineFailureReachesEveryImageOfItsBatch) {
  RequestBatcher batcher([](const std::vector<RgbImage>&) -> std::vector<Recognition> {
    throw std::runtime_error("device lost");
  }, {2, 10s, 10});
  auto request = batcher.submit(images({1, 2}));
  ASSERT_TRUE(request);
  for (auto& future : *request) EXPECT_EQ(future.get().error, "device lost");
}

}  // namespace
}  // namespace trocr::test

// The service's dynamic batcher with a stand-in engine that records the batches it is given.
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <map>
#include <optional>
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
    return [this](const std::vector<RgbImage>& images, const GenerationConfig& settings) {
      std::vector<Recognition> results;
      std::vector<int> batch;
      for (const RgbImage& image : images) {
        batch.push_back(image.width + 1000 * (settings.num_beams - 1));
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

RequestBatcher::Settings beams(int count) {
  auto settings = std::make_shared<GenerationConfig>();
  settings->num_beams = count;
  return settings;
}

// The request's results as a future (nullopt: refused).
std::optional<std::shared_future<std::vector<BatchedResult>>> submit(RequestBatcher& batcher, std::vector<RgbImage> list,
                                                                     RequestBatcher::Settings settings = beams(1)) {
  auto promise = std::make_shared<std::promise<std::vector<BatchedResult>>>();
  std::shared_future<std::vector<BatchedResult>> future = promise->get_future().share();
  if (!batcher.submit(std::move(list), std::move(settings),
                      [promise](std::vector<BatchedResult> results) { promise->set_value(std::move(results)); })) {
    return std::nullopt;
  }
  return future;
}

TEST(RequestBatcher, JoinsRequestsIntoBatchesOfAtMostMaxBatch) {
  RecordingEngine engine;
  RequestBatcher batcher({engine.engine()}, {3, 10s, 100});
  auto first = submit(batcher, images({1, 2}));
  auto second = submit(batcher, images({3, 4}));
  ASSERT_TRUE(first && second);
  // The first three images fill a batch at once; the fourth waits for its deadline or the drain.
  EXPECT_EQ(first->get()[0].recognition.best().text, "1");  // complete with the first batch
  batcher.drain();
  EXPECT_EQ(second->get()[0].batch_size, 3);
  EXPECT_EQ(second->get()[1].recognition.best().text, "4");
  ASSERT_EQ(engine.batches.size(), 2u);
  EXPECT_EQ(engine.batches[0], (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(engine.batches[1], (std::vector<int>{4}));
}

TEST(RequestBatcher, RunsAPartialBatchWhenTheOldestImageHasWaitedMaxWait) {
  RecordingEngine engine;
  RequestBatcher batcher({engine.engine()}, {8, 20ms, 100});
  auto lone = submit(batcher, images({7}));
  ASSERT_TRUE(lone);
  const BatchedResult result = lone->get()[0];  // no drain: only the deadline can start it
  EXPECT_EQ(result.batch_size, 1);
  EXPECT_GE(result.queue_ms, 15.0);
}

TEST(RequestBatcher, RefusesWholeRequestsThatDoNotFitTheQueue) {
  RecordingEngine engine;
  RequestBatcher batcher({engine.engine()}, {8, 10s, 3});
  auto fits = submit(batcher, images({1, 2}));
  EXPECT_TRUE(fits);
  EXPECT_FALSE(submit(batcher, images({3, 4})));  // 4 > 3: none of it is queued
  EXPECT_EQ(batcher.queued(), 2u);
  EXPECT_TRUE(submit(batcher, images({5})));
  batcher.drain();
  EXPECT_FALSE(submit(batcher, images({6})));  // draining: nothing new
  ASSERT_EQ(engine.batches.size(), 1u);
  EXPECT_EQ(engine.batches[0], (std::vector<int>{1, 2, 5}));
}

TEST(RequestBatcher, AnEngineFailureReachesEveryImageOfItsBatch) {
  RequestBatcher::Engine failing = [](const std::vector<RgbImage>&, const GenerationConfig&) -> std::vector<Recognition> {
    throw std::runtime_error("device lost");
  };
  RequestBatcher batcher({failing}, {2, 10s, 10});
  auto request = submit(batcher, images({1, 2}));
  ASSERT_TRUE(request);
  for (const BatchedResult& result : request->get()) EXPECT_EQ(result.error, "device lost");
}

TEST(RequestBatcher, BatchesOnlyImagesWithTheSameSettingsAndKeepsTheOthersInOrder) {
  RecordingEngine engine;
  RequestBatcher batcher({engine.engine()}, {4, 10s, 100});
  auto greedy_a = submit(batcher, images({1}), beams(1));
  auto beam = submit(batcher, images({2, 3}), beams(4));
  auto greedy_b = submit(batcher, images({4}), beams(1));   // another object, the same settings
  auto greedy_c = submit(batcher, images({5, 6}), beams(1));
  ASSERT_TRUE(greedy_a && beam && greedy_b && greedy_c);
  EXPECT_EQ(greedy_c->get()[1].recognition.best().text, "6");  // 1, 4, 5, 6 fill a batch at once
  batcher.drain();
  EXPECT_EQ(beam->get()[0].batch_size, 2);
  ASSERT_EQ(engine.batches.size(), 2u);
  EXPECT_EQ(engine.batches[0], (std::vector<int>{1, 4, 5, 6}));
  EXPECT_EQ(engine.batches[1], (std::vector<int>{3002, 3003}));
}

// Two engines (two GPUs) share the queue: while one is busy, the other takes the next batch. Each
// engine holds its batch until the other has started one, which only a second worker can do.
TEST(RequestBatcher, AnIdleEngineTakesTheNextBatchWhileAnotherIsBusy) {
  std::mutex mutex;
  std::condition_variable started;
  std::vector<std::vector<int>> per_engine(2);
  auto engine = [&](int index) -> RequestBatcher::Engine {
    return [&, index](const std::vector<RgbImage>& batch, const GenerationConfig&) {
      std::unique_lock<std::mutex> lock(mutex);
      for (const RgbImage& image : batch) per_engine[index].push_back(image.width);
      started.notify_all();
      started.wait_for(lock, 5s, [&] { return !per_engine[1 - index].empty(); });
      std::vector<Recognition> results(batch.size());
      for (size_t i = 0; i < batch.size(); ++i) {
        results[i].candidates.push_back(TextCandidate{std::to_string(batch[i].width), {}, 0, 0, 0});
      }
      return results;
    };
  };
  RequestBatcher batcher({engine(0), engine(1)}, {1, 0ms, 10});
  auto first = submit(batcher, images({1}));
  auto second = submit(batcher, images({2}));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->get()[0].recognition.best().text, "1");
  EXPECT_EQ(second->get()[0].recognition.best().text, "2");
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(per_engine[0].size(), 1u);  // each engine ran one image: neither waited out its 5 s
  EXPECT_EQ(per_engine[1].size(), 1u);
}

// A request split over several engines is answered once, with every image's own result in order.
TEST(RequestBatcher, ARequestSpreadOverEnginesIsAnsweredOnceInOrder) {
  std::vector<RecordingEngine> engines(3);
  std::vector<RequestBatcher::Engine> runs;
  for (RecordingEngine& engine : engines) runs.push_back(engine.engine());
  std::atomic<int> answers{0};
  std::promise<std::vector<BatchedResult>> promise;
  {
    RequestBatcher batcher(std::move(runs), {2, 0ms, 100});
    std::vector<RgbImage> many;
    for (int number = 1; number <= 40; ++number) many.push_back(numbered_image(number));
    ASSERT_TRUE(batcher.submit(std::move(many), beams(1), [&](std::vector<BatchedResult> results) {
      if (answers.fetch_add(1) == 0) promise.set_value(std::move(results));
    }));
  }  // the batcher drains on destruction
  EXPECT_EQ(answers.load(), 1);
  const std::vector<BatchedResult> results = promise.get_future().get();
  ASSERT_EQ(results.size(), 40u);
  for (int number = 1; number <= 40; ++number) EXPECT_EQ(results[number - 1].recognition.best().text, std::to_string(number));
  size_t images_run = 0;
  for (RecordingEngine& engine : engines) {
    for (const auto& batch : engine.batches) {
      EXPECT_LE(batch.size(), 2u);
      images_run += batch.size();
    }
  }
  EXPECT_EQ(images_run, 40u);
}

// A stand-in for in-flight lines: an image of width w ends after w steps of 1 ms; its text says
// the step it ended at. Greedy settings only (the opener refuses others, as the CPU engine does).
struct CountingStream : RecognitionStream {
  explicit CountingStream(int lines, std::atomic<int>* most_active, bool fail_at_step_3 = false)
      : capacity_(lines), most_active_(most_active), fail_at_step_3_(fail_at_step_3) {}
  int capacity() const override { return capacity_; }
  int active() const override { return static_cast<int>(remaining_.size()); }
  void prepare(const std::vector<RgbImage>& images) override {
    prepared_ = images;
    if (prepared_off_the_step_thread_ && steps_taken_ > 0 && std::this_thread::get_id() != step_thread_) {
      *prepared_off_the_step_thread_ = true;
    }
  }
  std::vector<int> admit_prepared() override {
    const std::vector<RgbImage> images = std::move(prepared_);
    prepared_.clear();
    if (active() + static_cast<int>(images.size()) > capacity_) throw std::runtime_error("over capacity");
    std::vector<int> lines;
    for (const RgbImage& image : images) {
      lines.push_back(next_line_++);
      remaining_[lines.back()] = image.width;
    }
    *most_active_ = std::max(most_active_->load(), active());
    if (admissions_) ++*admissions_;
    if (largest_admission_) *largest_admission_ = std::max(largest_admission_->load(), int(images.size()));
    return lines;
  }
  std::vector<std::pair<int, Recognition>> step() override {
    step_thread_ = std::this_thread::get_id();
    ++steps_taken_;
    std::this_thread::sleep_for(1ms);
    if (fail_at_step_3_ && ++steps_ == 3) throw std::runtime_error("stream lost");
    ++step_;
    std::vector<std::pair<int, Recognition>> ended;
    for (auto line = remaining_.begin(); line != remaining_.end();) {
      if (--line->second > 0) {
        ++line;
        continue;
      }
      Recognition recognition;
      recognition.candidates.push_back(TextCandidate{"step " + std::to_string(step_), {}, 0, 0, 0});
      ended.emplace_back(line->first, recognition);
      line = remaining_.erase(line);
    }
    return ended;
  }
  int capacity_;
  std::atomic<int>* most_active_;
  bool fail_at_step_3_;
  std::map<int, int> remaining_;
  int next_line_ = 0, step_ = 0, steps_ = 0;
  std::vector<RgbImage> prepared_;
  // Set when images were prepared on another thread than the steps' (beside a running step).
  std::atomic<bool>* prepared_off_the_step_thread_ = nullptr;
  std::atomic<int>* admissions_ = nullptr;         // counted, where set
  std::atomic<int>* largest_admission_ = nullptr;  // most images admitted at once, where set
  std::atomic<int> steps_taken_{0};
  std::thread::id step_thread_;
};

RequestBatcher::StreamOpener counting_streams(std::atomic<int>* most_active, std::atomic<int>* opened = nullptr,
                                              bool fail_at_step_3 = false,
                                              std::atomic<bool>* prepared_off_the_step_thread = nullptr) {
  return [=](const GenerationConfig& settings, int capacity) -> std::unique_ptr<RecognitionStream> {
    if (settings.num_beams != 1) return nullptr;
    if (opened) ++*opened;
    auto stream = std::make_unique<CountingStream>(capacity, most_active, fail_at_step_3 && (!opened || *opened == 1));
    stream->prepared_off_the_step_thread_ = prepared_off_the_step_thread;
    return stream;
  };
}

int ended_at(const BatchedResult& result) {
  return std::stoi(result.recognition.best().text.substr(5));
}

// An image that arrives while a long line runs is prepared beside its step, joins it at the next,
// and is answered when its own line ends, long before the long one; max_batch lines run at most.
TEST(RequestBatcherInFlight, ALateImageJoinsTheRunningLinesAndLeavesWhenItsLineEnds) {
  RecordingEngine engine;
  std::atomic<int> most_active{0};
  std::atomic<bool> prepared_beside{false};
  RequestBatcher batcher({engine.engine()}, {2, 5ms, 100}, {},
                         {counting_streams(&most_active, nullptr, false, &prepared_beside)});
  auto long_line = submit(batcher, images({300}));
  ASSERT_TRUE(long_line);
  std::this_thread::sleep_for(20ms);
  auto short_lines = submit(batcher, images({2, 3, 4}));
  ASSERT_TRUE(short_lines);
  const auto shorts = short_lines->get();
  EXPECT_EQ(long_line->wait_for(0ms), std::future_status::timeout) << "the late images waited for the long line";
  const auto long_result = long_line->get();
  EXPECT_EQ(ended_at(long_result[0]), 300);
  for (const BatchedResult& result : shorts) {
    EXPECT_TRUE(result.error.empty()) << result.error;
    EXPECT_LT(ended_at(result), 300);
  }
  // Two lines at once: the three late images took the second line in turn.
  EXPECT_EQ(most_active, 2);
  EXPECT_LT(ended_at(shorts[0]), ended_at(shorts[1]));
  EXPECT_LT(ended_at(shorts[1]), ended_at(shorts[2]));
  EXPECT_TRUE(engine.batches.empty()) << "greedy images went to whole batches";
  EXPECT_TRUE(prepared_beside) << "late images are prepared on another thread while the running lines step";
}

// A server's default settings get their stream before the batcher is made (its first open builds
// what admissions need), and images with those settings run on it; other settings open their own.
TEST(RequestBatcherInFlight, TheDefaultSettingsStreamIsOpenBeforeTheFirstImage) {
  RecordingEngine engine;
  std::atomic<int> most_active{0}, opened{0};
  RequestBatcher batcher({engine.engine()}, {2, 5ms, 100}, {}, {counting_streams(&most_active, &opened)}, beams(1));
  EXPECT_EQ(opened, 1) << "opened before the constructor returned";
  auto lines = submit(batcher, images({2, 3}));
  ASSERT_TRUE(lines);
  for (const BatchedResult& result : lines->get()) EXPECT_TRUE(result.error.empty()) << result.error;
  EXPECT_EQ(opened, 1) << "the default settings' images ran on the stream opened ahead";
  EXPECT_TRUE(engine.batches.empty());
  auto other = std::make_shared<GenerationConfig>();
  other->max_length = 7;
  auto later = submit(batcher, images({2}), other);
  ASSERT_TRUE(later);
  later->get();
  EXPECT_EQ(opened, 2) << "other settings open their own stream";
}

// A stream that throws as it opens (the GPU out of memory, say) costs no worker: the images run as
// whole batches, before the server is ready and at a request alike, and each failure is reported
// with its error.
TEST(RequestBatcherInFlight, AStreamThatFailsToOpenLeavesItsImagesToWholeBatches) {
  RecordingEngine engine;
  std::atomic<int> attempts{0}, reported{0};
  RequestBatcher::StreamOpener throwing = [&](const GenerationConfig&, int) -> std::unique_ptr<RecognitionStream> {
    ++attempts;
    throw Error("out of memory");
  };
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  RequestBatcher batcher({engine.engine()}, {2, 1ms, 100}, {}, {throwing}, beams(1),
                         [&](size_t engine_index, const std::string& error) {
                           EXPECT_EQ(engine_index, 0u);
                           std::lock_guard<std::mutex> lock(errors_mutex);
                           errors.push_back(error);
                         });
  auto lines = submit(batcher, images({2, 3}));
  ASSERT_TRUE(lines);
  for (const BatchedResult& result : lines->get()) EXPECT_TRUE(result.error.empty()) << result.error;
  EXPECT_GE(attempts, 2) << "opened ahead, and again for the first images";
  {
    std::lock_guard<std::mutex> lock(errors_mutex);
    EXPECT_EQ(int(errors.size()), attempts.load()) << "every failed open is reported";
    for (const std::string& error : errors) EXPECT_NE(error.find("out of memory"), std::string::npos) << error;
  }
  std::lock_guard<std::mutex> lock(engine.mutex);
  EXPECT_FALSE(engine.batches.empty()) << "the images ran as whole batches";
}

// A failed open is tried again once reopen_after has passed (not at every image: an open may
// cost seconds), and the images run in flight again once it succeeds.
TEST(RequestBatcherInFlight, AStreamThatFailedToOpenIsTriedAgainLater) {
  RecordingEngine engine;
  std::atomic<int> attempts{0}, most_active{0};
  const RequestBatcher::StreamOpener counting = counting_streams(&most_active);
  RequestBatcher::StreamOpener failing_twice = [&](const GenerationConfig& settings,
                                                   int capacity) -> std::unique_ptr<RecognitionStream> {
    if (++attempts <= 2) throw Error("out of memory");
    return counting(settings, capacity);
  };
  BatcherOptions options{2, 1ms, 100};
  options.reopen_after = 200ms;
  RequestBatcher batcher({engine.engine()}, options, {}, {failing_twice}, beams(1));
  // Opened ahead (1), then at the first images (2): whole batches, and no third attempt for
  // images that come before reopen_after has passed.
  auto first = submit(batcher, images({2}));
  ASSERT_TRUE(first);
  first->get();
  auto soon = submit(batcher, images({2}));
  ASSERT_TRUE(soon);
  soon->get();
  EXPECT_EQ(attempts, 2);
  std::this_thread::sleep_for(250ms);
  auto later = submit(batcher, images({2, 3}));
  ASSERT_TRUE(later);
  for (const BatchedResult& result : later->get()) {
    EXPECT_TRUE(result.error.empty()) << result.error;
    EXPECT_EQ(result.recognition.best().text.rfind("step ", 0), 0u) << "ran in flight: " << result.recognition.best().text;
  }
  EXPECT_EQ(attempts, 3);
  std::lock_guard<std::mutex> lock(engine.mutex);
  EXPECT_EQ(engine.batches.size(), 2u) << "only the first two requests ran as whole batches";
}

// An admission takes at most max_admission images; the others join the running lines at later
// steps.
TEST(RequestBatcherInFlight, AnAdmissionTakesAtMostMaxAdmissionImages) {
  RecordingEngine engine;
  std::atomic<int> most_active{0}, admissions{0}, largest_admission{0};
  RequestBatcher::StreamOpener opener = [&](const GenerationConfig& settings,
                                            int capacity) -> std::unique_ptr<RecognitionStream> {
    if (settings.num_beams != 1) return nullptr;
    auto stream = std::make_unique<CountingStream>(capacity, &most_active);
    stream->admissions_ = &admissions;
    stream->largest_admission_ = &largest_admission;
    return stream;
  };
  BatcherOptions options{8, 1ms, 100};
  options.max_admission = 2;
  RequestBatcher batcher({engine.engine()}, options, {}, {opener});
  auto lines = submit(batcher, images({20, 20, 20, 20, 20}));
  ASSERT_TRUE(lines);
  for (const BatchedResult& result : lines->get()) {
    EXPECT_TRUE(result.error.empty()) << result.error;
    EXPECT_EQ(result.recognition.best().text.rfind("step ", 0), 0u) << "ran in flight";
  }
  EXPECT_EQ(largest_admission, 2);
  EXPECT_GE(admissions, 3) << "five images, two at a time";
  EXPECT_GT(most_active, 2) << "later admissions joined the running lines";
}

// Settings the stream refuses (beam search here) run as whole batches on the same worker; an
// older image with such settings that has waited max_wait gets its batch before newer greedy
// images join.
TEST(RequestBatcherInFlight, OtherSettingsRunAsWholeBatchesAndAreNotStarved) {
  RecordingEngine engine;
  std::atomic<int> most_active{0};
  RequestBatcher batcher({engine.engine()}, {4, 5ms, 100}, {}, {counting_streams(&most_active)});
  auto long_line = submit(batcher, images({200}), beams(1));
  std::this_thread::sleep_for(10ms);
  auto beam = submit(batcher, images({7}), beams(4));
  std::this_thread::sleep_for(20ms);  // the beam image has waited max_wait: greedy admissions stop
  auto late_greedy = submit(batcher, images({5}), beams(1));
  ASSERT_TRUE(long_line && beam && late_greedy);
  EXPECT_EQ(beam->get()[0].recognition.best().text, "7");
  EXPECT_EQ(ended_at(late_greedy->get()[0]), 5) << "it joined a fresh stream after the beam batch";
  EXPECT_EQ(ended_at(long_line->get()[0]), 200);
  ASSERT_EQ(engine.batches.size(), 1u);
  EXPECT_EQ(engine.batches[0], (std::vector<int>{3007}));
}

// A failing stream answers each of its lines with the error; the worker opens a new one for the
// next images.
TEST(RequestBatcherInFlight, AStreamFailureReachesEveryLineAndTheNextStreamServes) {
  RecordingEngine engine;
  std::atomic<int> most_active{0}, opened{0};
  RequestBatcher batcher({engine.engine()}, {4, 5ms, 100}, {}, {counting_streams(&most_active, &opened, true)});
  auto doomed = submit(batcher, images({10, 20}));
  ASSERT_TRUE(doomed);
  for (const BatchedResult& result : doomed->get()) EXPECT_EQ(result.error, "stream lost");
  auto next = submit(batcher, images({2}));
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->get()[0].error.empty());
  EXPECT_EQ(opened, 2);
}

}  // namespace
}  // namespace trocr::test

#pragma once
// Dynamic batching for the service: images from concurrent requests wait in one bounded queue,
// and a worker per engine (one per GPU) takes them out in batches, as soon as `max_batch` images
// with the same generation settings are waiting or the oldest has waited `max_wait`; an engine
// that is busy leaves the queue to the others. A request whose images do not all fit in the
// queue is refused at once (the service answers 503) instead of piling up. Nothing waits on a
// thread: each request's callback gets its results, once its last image is done on any engine.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "decoding/search.h"
#include "trocr/recognizer.h"

namespace trocr {

struct BatcherOptions {
  int max_batch = 32;
  std::chrono::microseconds max_wait{5000};
  size_t queue_capacity = 256;  // images waiting, not yet in a running batch
};

struct BatchedResult {
  Recognition recognition;
  std::string error;  // the engine failed on this image's batch
  double queue_ms = 0;      // submitted until its batch started
  double inference_ms = 0;  // its batch's time in the engine
  int batch_size = 0;
};

class RequestBatcher {
 public:
  using Settings = std::shared_ptr<const GenerationConfig>;
  using Engine = std::function<std::vector<Recognition>(const std::vector<RgbImage>&, const GenerationConfig&)>;
  // Called once per batch run, for metrics; `engine` indexes the constructor's engines.
  using BatchObserver = std::function<void(size_t engine, int batch_size, double inference_ms)>;
  // Called on a worker's thread once all of a request's images are done, in their order.
  using Done = std::function<void(std::vector<BatchedResult>)>;

  // At least one engine; each gets its own worker thread.
  RequestBatcher(std::vector<Engine> engines, BatcherOptions options, BatchObserver observer = {});
  ~RequestBatcher();  // finishes the queued images first
  RequestBatcher(const RequestBatcher&) = delete;
  RequestBatcher& operator=(const RequestBatcher&) = delete;

  // All of the images are queued, or none (false: the queue has no room for them, or it drains).
  bool submit(std::vector<RgbImage> images, Settings settings, Done done);
  size_t queued() const;
  // Stops taking images, runs those queued, and joins the workers.
  void drain();

 private:
  using Clock = std::chrono::steady_clock;
  struct Request;
  struct Job {
    RgbImage image;
    Settings settings;
    SearchOptions search;  // what the engine reads of the settings: equal ones share a batch
    Clock::time_point submitted;
    std::shared_ptr<Request> request;
    size_t index;  // within its request
  };
  void work(size_t engine);
  std::vector<Job> next_batch();
  size_t waiting_like(const SearchOptions& search) const;

  std::vector<Engine> engines_;
  BatcherOptions options_;
  BatchObserver observer_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> queue_;
  bool draining_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace trocr

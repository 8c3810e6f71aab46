#pragma once
// Dynamic batching for the service: images from concurrent requests wait in one bounded queue,
// and a worker per engine (one per GPU) takes them out in batches, as soon as `max_batch` images
// with the same generation settings are waiting or the oldest has waited `max_wait`; an engine
// that is busy leaves the queue to the others. An engine that can decode lines in flight (a
// stream opener that returns a stream for the oldest image's settings) instead takes waiting
// images with those settings into its running batch between decoding steps (as many as lines are
// free, or fewer once the oldest has waited `max_wait`), `max_batch` lines at once, and answers
// each as soon as its line ends; an older image with other settings that
// has waited `max_wait` stops admissions until the running lines end. A request whose images
// do not all fit in the queue is refused at once (the service answers 503) instead of piling
// up. Nothing waits on a thread: each request's callback gets its results, once its last image
// is done on any engine.
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
  // In flight: most images one admission takes into the running lines (0: as many as are free).
  // Smaller admissions finish their encoder pass sooner, so their lines start sooner.
  int max_admission = 0;
  // A stream that failed to open (or that the engine refused) is tried again after this.
  std::chrono::milliseconds reopen_after{10000};
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
  // In-flight lines for these settings, max_batch at once; nullptr where the engine cannot.
  using StreamOpener = std::function<std::unique_ptr<RecognitionStream>(const GenerationConfig&, int capacity)>;
  // Called once per batch run, for metrics; `engine` indexes the constructor's engines. In
  // flight: once per decoding step in which lines ended, with their number and the step's time.
  using BatchObserver = std::function<void(size_t engine, int batch_size, double inference_ms)>;
  // Called on a worker's thread when an engine's stream throws as it opens (its images then run
  // as whole batches until a later open succeeds), with the error.
  using StreamFailureObserver = std::function<void(size_t engine, const std::string& error)>;
  // Called on a worker's thread once all of a request's images are done, in their order.
  using Done = std::function<void(std::vector<BatchedResult>)>;

  // At least one engine; each gets its own worker thread. `streams`: none, or one per engine
  // (an empty function: that engine runs whole batches only). `open_ahead`: settings whose stream
  // each worker opens before the constructor returns (a server's defaults): a stream's first open
  // builds what its admissions need (seconds on a GPU), which the first images would wait for.
  // A stream that failed to open is tried again after options.reopen_after.
  RequestBatcher(std::vector<Engine> engines, BatcherOptions options, BatchObserver observer = {},
                 std::vector<StreamOpener> streams = {}, Settings open_ahead = nullptr,
                 StreamFailureObserver stream_failed = {});
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
  // The engine's stream for these settings; none where it cannot run them in flight or fails to
  // open (the images then run as whole batches).
  std::unique_ptr<RecognitionStream> open_stream(size_t engine, const GenerationConfig& settings);
  // The worker's stream for open_ahead_ (none where there is none to open); the constructor
  // waits until every worker has tried.
  std::unique_ptr<RecognitionStream> open_ahead(size_t engine);
  // The oldest waiting job's settings, once there is one; nullptr: stop (drained).
  Settings wait_for_work();
  std::vector<Job> next_batch();
  void run_batch(size_t engine, std::vector<Job> batch);
  // Until no line runs and none may join; false: the stream failed (its lines got the error).
  bool run_in_flight(size_t engine, RecognitionStream& stream, const SearchOptions& search);
  // Up to `count` waiting jobs with these settings, oldest first, once `count` wait or the oldest
  // of them has waited max_wait (with `wait`, until then; else none yet); none while an older
  // job with other settings has waited max_wait (the running lines end first, then it gets its
  // batch).
  std::vector<Job> take_for_lines(const SearchOptions& search, size_t count, bool wait);
  // Takes up to `count` waiting jobs with these settings out of the queue, oldest first (the
  // caller holds the lock). By value: the caller may name a queued job's settings, which the
  // taking erases.
  std::vector<Job> take_like(SearchOptions search, size_t count);
  size_t waiting_like(const SearchOptions& search) const;
  // Hands a job its result, and its request's callback all of them once its last one is in.
  static void deliver(Job& job, Recognition recognition, const std::string& error, Clock::time_point started,
                      double inference_ms, int batch_size);

  std::vector<Engine> engines_;
  std::vector<StreamOpener> streams_;
  Settings open_ahead_;
  BatcherOptions options_;
  BatchObserver observer_;
  StreamFailureObserver stream_failed_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> queue_;
  bool draining_ = false;
  size_t workers_opened_ = 0;  // workers past open_ahead
  std::vector<std::thread> workers_;
};

}  // namespace trocr

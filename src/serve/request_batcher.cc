#include "serve/request_batcher.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <optional>

#include "common/check.h"

namespace trocr {

struct RequestBatcher::Request {
  std::vector<BatchedResult> results;
  std::atomic<size_t> remaining;  // its images may finish on several workers at once
  Done done;
};

RequestBatcher::RequestBatcher(std::vector<Engine> engines, BatcherOptions options, BatchObserver observer,
                               std::vector<StreamOpener> streams, Settings open_ahead,
                               StreamFailureObserver stream_failed)
    : engines_(std::move(engines)),
      streams_(std::move(streams)),
      open_ahead_(std::move(open_ahead)),
      options_(options),
      observer_(std::move(observer)),
      stream_failed_(std::move(stream_failed)) {
  if (engines_.empty()) fail("the request batcher needs at least one engine");
  if (!streams_.empty() && streams_.size() != engines_.size()) fail("the request batcher needs a stream opener per engine");
  streams_.resize(engines_.size());
  options_.max_batch = std::max(1, options_.max_batch);
  for (size_t engine = 0; engine < engines_.size(); ++engine) workers_.emplace_back([this, engine] { work(engine); });
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return workers_opened_ == workers_.size(); });
}

std::unique_ptr<RecognitionStream> RequestBatcher::open_stream(size_t engine, const GenerationConfig& settings) {
  try {
    return streams_[engine](settings, options_.max_batch);
  } catch (const std::exception& failure) {
    if (stream_failed_) stream_failed_(engine, failure.what());
    return nullptr;  // as where the engine cannot: whole batches, whose own failure is answered
  }
}

std::unique_ptr<RecognitionStream> RequestBatcher::open_ahead(size_t engine) {
  // On the worker's thread, where the stream runs.
  std::unique_ptr<RecognitionStream> stream;
  if (open_ahead_ && streams_[engine]) stream = open_stream(engine, *open_ahead_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++workers_opened_;
  }
  changed_.notify_all();
  return stream;
}

RequestBatcher::~RequestBatcher() { drain(); }

bool RequestBatcher::submit(std::vector<RgbImage> images, Settings settings, Done done) {
  auto request = std::make_shared<Request>();
  request->results.resize(images.size());
  request->remaining = images.size();
  request->done = std::move(done);
  if (images.empty()) {
    request->done({});
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_ || queue_.size() + images.size() > options_.queue_capacity) return false;
    const auto now = Clock::now();
    const SearchOptions search = SearchOptions::from(*settings);
    for (size_t i = 0; i < images.size(); ++i) {
      queue_.push_back(Job{std::move(images[i]), settings, search, now, request, i});
    }
  }
  changed_.notify_all();
  return true;
}

size_t RequestBatcher::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void RequestBatcher::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    draining_ = true;
  }
  changed_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

std::vector<RequestBatcher::Job> RequestBatcher::take_like(const SearchOptions search, size_t count) {
  std::vector<Job> taken;
  for (auto job = queue_.begin(); job != queue_.end() && taken.size() < count;) {
    if (job->search == search) {
      taken.push_back(std::move(*job));
      job = queue_.erase(job);
    } else {
      ++job;
    }
  }
  return taken;
}

size_t RequestBatcher::waiting_like(const SearchOptions& search) const {
  return size_t(std::count_if(queue_.begin(), queue_.end(), [&](const Job& job) { return job.search == search; }));
}

// Waits until the oldest image's batch is full or the image has waited `max_wait`; an empty batch
// means stop. Images with other settings keep their places for a later batch. Idle workers wait
// here together, and each looks again at the queue's oldest image when it wakes: another worker
// may have taken the one it waited for.
std::vector<RequestBatcher::Job> RequestBatcher::next_batch() {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto oldest_is_ready = [&] {
    return draining_ || Clock::now() >= queue_.front().submitted + options_.max_wait ||
           waiting_like(queue_.front().search) >= size_t(options_.max_batch);
  };
  for (;;) {
    changed_.wait(lock, [&] { return !queue_.empty() || draining_; });
    if (queue_.empty()) return {};
    if (oldest_is_ready()) break;
    changed_.wait_until(lock, queue_.front().submitted + options_.max_wait);
  }
  std::vector<Job> batch = take_like(queue_.front().search, size_t(options_.max_batch));
  if (!queue_.empty()) changed_.notify_all();  // what is left may be another worker's batch
  return batch;
}

RequestBatcher::Settings RequestBatcher::wait_for_work() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !queue_.empty() || draining_; });
  return queue_.empty() ? nullptr : queue_.front().settings;
}

void RequestBatcher::work(size_t engine) {
  std::unique_ptr<RecognitionStream> stream = open_ahead(engine);  // kept while its settings return
  std::optional<SearchOptions> stream_search;
  if (stream) stream_search = SearchOptions::from(*open_ahead_);
  // Settings without a stream (it failed to open, or the engine cannot) are tried again from
  // here: a GPU out of memory for a moment does not leave the server on whole batches for good.
  Clock::time_point reopen_at;
  for (Settings oldest; (oldest = wait_for_work());) {
    if (streams_[engine]) {
      const SearchOptions search = SearchOptions::from(*oldest);
      if (!stream_search || !(*stream_search == search) || (!stream && Clock::now() >= reopen_at)) {
        stream.reset();
        stream = open_stream(engine, *oldest);
        stream_search = search;
        reopen_at = Clock::now() + options_.reopen_after;
      }
      if (stream) {
        if (!run_in_flight(engine, *stream, search)) stream_search.reset();
        continue;
      }
    }
    std::vector<Job> batch = next_batch();
    if (batch.empty()) return;
    run_batch(engine, std::move(batch));
  }
}

void RequestBatcher::run_batch(size_t engine, std::vector<Job> batch) {
  const auto started = Clock::now();
  std::vector<RgbImage> images;
  for (Job& job : batch) images.push_back(std::move(job.image));
  std::vector<Recognition> recognitions;
  std::string error;
  try {
    recognitions = engines_[engine](images, *batch.front().settings);
    if (recognitions.size() != batch.size()) error = "the engine returned a wrong number of results";
  } catch (const std::exception& failure) {
    error = failure.what();
  }
  const double inference_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (observer_) observer_(engine, int(batch.size()), inference_ms);
  for (size_t i = 0; i < batch.size(); ++i) {
    deliver(batch[i], error.empty() ? std::move(recognitions[i]) : Recognition{}, error, started, inference_ms,
            int(batch.size()));
  }
}

std::vector<RequestBatcher::Job> RequestBatcher::take_for_lines(const SearchOptions& search, size_t count,
                                                                bool wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (count == 0) return {};
  for (;;) {
    const auto oldest_like = std::find_if(queue_.begin(), queue_.end(), [&](const Job& job) { return job.search == search; });
    if (oldest_like == queue_.end()) return {};
    const Job& oldest = queue_.front();
    if (!(oldest.search == search) && Clock::now() >= oldest.submitted + options_.max_wait) return {};
    // As for whole batches: the new lines' encoder pass runs once for as many images as can
    // join, or once the oldest of them has waited max_wait.
    const auto deadline = oldest_like->submitted + options_.max_wait;
    if (draining_ || waiting_like(search) >= count || Clock::now() >= deadline) break;
    if (!wait) return {};
    changed_.wait_until(lock, deadline);
  }
  return take_like(search, count);
}

bool RequestBatcher::run_in_flight(size_t engine, RecognitionStream& stream, const SearchOptions& search) {
  struct Line {
    Job job;
    Clock::time_point admitted;
    int batch_size;  // lines running when it joined, itself included
  };
  std::map<int, Line> lines;
  // A failed call leaves the stream's state unknown: every running line is answered with the
  // error, and false tells the worker to open a new stream.
  const auto fail_all = [&](std::vector<Job>& joining, const std::string& error) {
    const auto now = Clock::now();
    for (Job& job : joining) deliver(job, {}, error, now, 0.0, int(joining.size()));
    for (auto& [number, line] : lines) deliver(line.job, {}, error, line.admitted, 0.0, line.batch_size);
    lines.clear();
  };
  // Joining images are resized and normalized on another thread while the running lines step
  // (on a GPU the host's work then costs nothing), and join at the first step after theirs is
  // done: the lines never wait for it. Nothing more is taken until they have joined.
  std::vector<Job> joining;
  std::future<void> preparing;
  for (;;) {
    if (joining.empty()) {
      const int free_lines = stream.capacity() - stream.active();
      const int admission = options_.max_admission > 0 ? std::min(free_lines, options_.max_admission) : free_lines;
      joining = take_for_lines(search, size_t(admission), /*wait=*/stream.active() == 0);
      if (!joining.empty()) {
        std::vector<RgbImage> images;
        for (Job& job : joining) images.push_back(std::move(job.image));
        preparing = std::async(stream.active() > 0 ? std::launch::async : std::launch::deferred,
                               [&stream, images = std::move(images)] { stream.prepare(images); });
      }
    }
    std::vector<std::pair<int, Recognition>> ended;
    const auto started = Clock::now();
    try {
      if (stream.active() > 0) ended = stream.step();
    } catch (const std::exception& failure) {
      if (preparing.valid()) preparing.wait();
      fail_all(joining, failure.what());
      return false;
    }
    const auto now = Clock::now();
    if (!ended.empty() && observer_) {
      observer_(engine, int(ended.size()), std::chrono::duration<double, std::milli>(now - started).count());
    }
    for (auto& [number, recognition] : ended) {
      Line& line = lines.at(number);
      deliver(line.job, std::move(recognition), "", line.admitted,
              std::chrono::duration<double, std::milli>(now - line.admitted).count(), line.batch_size);
      lines.erase(number);
    }
    const bool prepared = !joining.empty() && (stream.active() == 0 ||
                                               preparing.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    if (prepared) {
      try {
        preparing.get();
        const std::vector<int> numbers = stream.admit_prepared();
        const auto admitted = Clock::now();
        for (size_t i = 0; i < joining.size(); ++i) {
          lines.emplace(numbers.at(i), Line{std::move(joining[i]), admitted, stream.active()});
        }
        joining.clear();
      } catch (const std::exception& failure) {
        fail_all(joining, failure.what());
        return false;
      }
    }
    if (stream.active() == 0 && joining.empty()) return true;
  }
}

void RequestBatcher::deliver(Job& job, Recognition recognition, const std::string& error, Clock::time_point started,
                             double inference_ms, int batch_size) {
  Request& request = *job.request;
  BatchedResult& result = request.results[job.index];
  result.recognition = std::move(recognition);
  result.error = error;
  result.queue_ms = std::chrono::duration<double, std::milli>(started - job.submitted).count();
  result.inference_ms = inference_ms;
  result.batch_size = batch_size;
  if (request.remaining.fetch_sub(1) == 1) {
    const Done done = std::move(request.done);  // and with it what the caller captured
    done(std::move(request.results));
  }
}

}  // namespace trocr

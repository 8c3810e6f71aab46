#include "serve/request_batcher.h"

#include <algorithm>
#include <atomic>

#include "common/check.h"

namespace trocr {

struct RequestBatcher::Request {
  std::vector<BatchedResult> results;
  std::atomic<size_t> remaining;  // its images may finish on several workers at once
  Done done;
};

RequestBatcher::RequestBatcher(std::vector<Engine> engines, BatcherOptions options, BatchObserver observer)
    : engines_(std::move(engines)), options_(options), observer_(std::move(observer)) {
  if (engines_.empty()) fail("the request batcher needs at least one engine");
  options_.max_batch = std::max(1, options_.max_batch);
  for (size_t engine = 0; engine < engines_.size(); ++engine) workers_.emplace_back([this, engine] { work(engine); });
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
  const SearchOptions search = queue_.front().search;
  std::vector<Job> batch;
  for (auto job = queue_.begin(); job != queue_.end() && batch.size() < size_t(options_.max_batch);) {
    if (job->search == search) {
      batch.push_back(std::move(*job));
      job = queue_.erase(job);
    } else {
      ++job;
    }
  }
  if (!queue_.empty()) changed_.notify_all();  // what is left may be another worker's batch
  return batch;
}

void RequestBatcher::work(size_t engine) {
  for (std::vector<Job> batch; !(batch = next_batch()).empty();) {
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
      Request& request = *batch[i].request;
      BatchedResult& result = request.results[batch[i].index];
      if (error.empty()) result.recognition = std::move(recognitions[i]);
      result.error = error;
      result.queue_ms = std::chrono::duration<double, std::milli>(started - batch[i].submitted).count();
      result.inference_ms = inference_ms;
      result.batch_size = int(batch.size());
      if (request.remaining.fetch_sub(1) == 1) {
        const Done done = std::move(request.done);  // and with it what the caller captured
        done(std::move(request.results));
      }
    }
  }
}

}  // namespace trocr

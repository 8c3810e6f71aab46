#include "serve/request_batcher.h"

#include <algorithm>

namespace trocr {

RequestBatcher::RequestBatcher(Engine engine, BatcherOptions options, BatchObserver observer)
    : engine_(std::move(engine)), options_(options), observer_(std::move(observer)) {
  options_.max_batch = std::max(1, options_.max_batch);
  worker_ = std::thread([this] { work(); });
}

RequestBatcher::~RequestBatcher() { drain(); }

std::optional<std::vector<std::future<BatchedResult>>> RequestBatcher::submit(std::vector<RgbImage> images) {
  std::vector<std::future<BatchedResult>> futures;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_ || queue_.size() + images.size() > options_.queue_capacity) return std::nullopt;
    const auto now = Clock::now();
    for (RgbImage& image : images) {
      queue_.push_back(Job{std::move(image), now, {}});
      futures.push_back(queue_.back().promise.get_future());
    }
  }
  changed_.notify_all();
  return futures;
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
  if (worker_.joinable()) worker_.join();
}

// Waits for a full batch or for the oldest image's deadline; an empty batch means stop.
std::vector<RequestBatcher::Job> RequestBatcher::next_batch() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !queue_.empty() || draining_; });
  if (queue_.empty()) return {};
  const auto deadline = queue_.front().submitted + options_.max_wait;
  changed_.wait_until(lock, deadline, [&] { return queue_.size() >= size_t(options_.max_batch) || draining_; });
  const size_t count = std::min(queue_.size(), size_t(options_.max_batch));
  std::vector<Job> batch;
  for (size_t i = 0; i < count; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void RequestBatcher::work() {
  for (std::vector<Job> batch; !(batch = next_batch()).empty();) {
    const auto started = Clock::now();
    std::vector<RgbImage> images;
    for (Job& job : batch) images.push_back(std::move(job.image));
    std::vector<Recognition> recognitions;
    std::string error;
    try {
      recognitions = engine_(images);
      if (recognitions.size() != batch.size()) error = "the engine returned a wrong number of results";
    } catch (const std::exception& failure) {
      error = failure.what();
    }
    const double inference_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    if (observer_) observer_(int(batch.size()), inference_ms);
    for (size_t i = 0; i < batch.size(); ++i) {
      BatchedResult result;
      if (error.empty()) result.recognition = std::move(recognitions[i]);
      result.error = error;
      result.queue_ms = std::chrono::duration<double, std::milli>(started - batch[i].submitted).count();
      result.inference_ms = inference_ms;
      result.batch_size = int(batch.size());
      batch[i].promise.set_value(std::move(result));
    }
  }
}

}  // namespace trocr

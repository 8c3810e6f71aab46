#pragma once
// The service's counters and histograms, rendered in Prometheus' text exposition format.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace trocr {

// A cumulative histogram with fixed upper bounds, as Prometheus expects.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // `name`_bucket{le=...}, `name`_sum and `name`_count lines.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, plus one for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServiceMetrics {
 public:
  ServiceMetrics();
  void count_response(int status);  // every answered request, by HTTP status
  void count_images(size_t images);
  // A batch run on `device` (cpu, cuda:N): one engine of the server.
  void observe_batch(const std::string& device, int batch_size, double inference_ms);
  // An in-flight stream on `device` failed to open: its images ran as whole batches.
  void count_stream_failure(const std::string& device);
  void observe_queue(double queue_ms);
  void observe_request(double request_ms);  // /v1/recognize requests answered 200
  // Gauges are read at render time.
  std::string render(size_t queue_depth, bool ready, size_t open_connections) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_;
  std::map<std::string, uint64_t> device_images_;
  std::map<std::string, uint64_t> stream_failures_;  // by device
  std::atomic<uint64_t> images_{0};
  Histogram batch_size_, inference_seconds_, queue_seconds_, request_seconds_;
};

}  // namespace trocr

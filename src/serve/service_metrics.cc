#include "serve/service_metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace trocr {
namespace {

const std::vector<double> kLatencySeconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};

// Resident memory from /proc (Linux), so that a soak run can watch it; 0 elsewhere.
double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * double(sysconf(_SC_PAGESIZE));
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string text = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    cumulative += counts_[i];
    text += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, upper_bounds_[i], cumulative);
  }
  text += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
  return text;
}

ServiceMetrics::ServiceMetrics()
    : batch_size_({1, 2, 4, 8, 16, 32, 64, 128, 256, 512}),
      inference_seconds_(kLatencySeconds),
      queue_seconds_(kLatencySeconds),
      request_seconds_(kLatencySeconds) {}

void ServiceMetrics::count_response(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++responses_[status];
}

void ServiceMetrics::count_images(size_t images) { images_ += images; }

void ServiceMetrics::observe_batch(const std::string& device, int batch_size, double inference_ms) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    device_images_[device] += size_t(batch_size);
  }
  batch_size_.observe(batch_size);
  inference_seconds_.observe(inference_ms / 1000.0);
}

void ServiceMetrics::count_stream_failure(const std::string& device) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stream_failures_[device];
}

void ServiceMetrics::observe_queue(double queue_ms) { queue_seconds_.observe(queue_ms / 1000.0); }

void ServiceMetrics::observe_request(double request_ms) { request_seconds_.observe(request_ms / 1000.0); }

std::string ServiceMetrics::render(size_t queue_depth, bool ready, size_t open_connections) const {
  std::string text =
      "# HELP trocr_requests_total HTTP requests answered, by status code.\n"
      "# TYPE trocr_requests_total counter\n";
  uint64_t errors = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [status, count] : responses_) {
      text += fmt::format("trocr_requests_total{{code=\"{}\"}} {}\n", status, count);
      if (status >= 400) errors += count;
    }
    text += "# HELP trocr_device_images_total Images recognized, by the device whose engine ran them.\n"
            "# TYPE trocr_device_images_total counter\n";
    for (const auto& [device, count] : device_images_) {
      text += fmt::format("trocr_device_images_total{{device=\"{}\"}} {}\n", device, count);
    }
    text += "# HELP trocr_stream_open_failures_total In-flight streams that failed to open, by device (their images ran "
            "as whole batches).\n# TYPE trocr_stream_open_failures_total counter\n";
    for (const auto& [device, count] : stream_failures_) {
      text += fmt::format("trocr_stream_open_failures_total{{device=\"{}\"}} {}\n", device, count);
    }
  }
  text += fmt::format(
      "# HELP trocr_request_errors_total Requests answered with a 4xx or 5xx status.\n"
      "# TYPE trocr_request_errors_total counter\ntrocr_request_errors_total {}\n"
      "# HELP trocr_images_total Images recognized.\n# TYPE trocr_images_total counter\ntrocr_images_total {}\n"
      "# HELP trocr_queue_depth Images waiting for a batch.\n# TYPE trocr_queue_depth gauge\ntrocr_queue_depth {}\n"
      "# HELP trocr_open_connections Client connections open now.\n"
      "# TYPE trocr_open_connections gauge\ntrocr_open_connections {}\n"
      "# HELP trocr_ready Whether the service takes requests (0 while draining).\n"
      "# TYPE trocr_ready gauge\ntrocr_ready {}\n"
      "# HELP process_resident_memory_bytes Resident memory of the server process.\n"
      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
      errors, images_.load(), queue_depth, open_connections, ready ? 1 : 0, resident_bytes());
  text += batch_size_.render("trocr_batch_size", "Images per engine batch.");
  text += inference_seconds_.render("trocr_batch_inference_seconds", "Engine time per batch.");
  text += queue_seconds_.render("trocr_queue_seconds", "Time an image waited for its batch to start.");
  text += request_seconds_.render("trocr_request_seconds", "Latency of successful recognition requests (/v1/recognize and KServe infer).");
  return text;
}

}  // namespace trocr

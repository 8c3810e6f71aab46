// The service's Prometheus text: counters by label, and the stream failures an operator reads
// when a GPU could not start its in-flight batch.
#include "serve/service_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace trocr {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(ServiceMetrics, CountsStreamFailuresAndImagesByDevice) {
  ServiceMetrics metrics;
  const std::string before = metrics.render(0, true, 0);
  EXPECT_TRUE(has_line(before, "# TYPE trocr_stream_open_failures_total counter")) << before;
  EXPECT_EQ(before.find("trocr_stream_open_failures_total{"), std::string::npos) << "no device has failed yet";

  metrics.count_stream_failure("cuda:1");
  metrics.count_stream_failure("cuda:1");
  metrics.count_stream_failure("cuda:0");
  metrics.observe_batch("cuda:0", 3, 12.0);
  metrics.observe_batch("cuda:0", 2, 8.0);
  const std::string after = metrics.render(5, true, 2);
  EXPECT_TRUE(has_line(after, "trocr_stream_open_failures_total{device=\"cuda:0\"} 1")) << after;
  EXPECT_TRUE(has_line(after, "trocr_stream_open_failures_total{device=\"cuda:1\"} 2")) << after;
  EXPECT_TRUE(has_line(after, "trocr_device_images_total{device=\"cuda:0\"} 5")) << after;
  EXPECT_TRUE(has_line(after, "trocr_queue_depth 5")) << after;
  EXPECT_TRUE(has_line(after, "trocr_batch_size_count 2")) << after;
  EXPECT_TRUE(has_line(after, "trocr_batch_size_sum 5")) << after;
}

}  // namespace
}  // namespace trocr

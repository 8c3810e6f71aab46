#pragma once
// The HTTP front of the engine: POST /v1/recognize, GET /healthz, /readyz and /metrics, with
// requests from all connections batched together by a RequestBatcher. Stateless, so replicas
// can run behind any load balancer.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "serve/request_batcher.h"
#include "serve/service_metrics.h"
#include "trocr/image.h"
#include "trocr/recognizer.h"

namespace httplib {
class Server;
}

namespace trocr {

struct ServiceOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (bind() says which)
  int http_threads = 64;  // concurrent connections served; each waits for its batch
  size_t max_request_bytes = 32u << 20;
  size_t max_images_per_request = 64;
  ImageLimits image_limits;
  BatcherOptions batching;
};

class OcrService {
 public:
  OcrService(const Recognizer& recognizer, GenerationConfig generation, ServiceOptions options);
  ~OcrService();
  // Binds the listening socket; returns the port (a trocr::Error if it cannot).
  int bind();
  // Serves until shutdown() is called, then returns once accepted requests are answered.
  void run();
  // Safe from another thread: stops accepting, answers what was accepted, drains the batcher.
  void shutdown();

 private:
  void add_routes();
  const Recognizer& recognizer_;
  GenerationConfig generation_;
  ServiceOptions options_;
  ServiceMetrics metrics_;
  std::unique_ptr<RequestBatcher> batcher_;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> ready_{false};
  std::mutex shutdown_mutex_;
};

}  // namespace trocr

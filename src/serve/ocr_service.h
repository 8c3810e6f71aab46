#pragma once
// The HTTP front of the engine, on the event-driven HttpServer:
//   POST /v1/recognize              multipart, raw image or JSON/base64 bodies (recognize_request.h)
//   POST /v2/models/trocr/infer     KServe v2 / Triton REST, BYTES in, texts out
//   GET  /v2, /v2/health/{live,ready}, /v2/models/trocr[/ready]   KServe v2 metadata and health
//   GET  /healthz, /readyz, /metrics (Prometheus), /openapi.json
// Requests from all connections are batched together by a RequestBatcher, each batch holding one
// set of generation settings, and run by whichever engine (one per GPU) is free. Stateless, so
// replicas can run behind any load balancer.
#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "serve/http_server.h"
#include "serve/request_batcher.h"
#include "serve/service_metrics.h"
#include "trocr/image.h"
#include "trocr/recognizer.h"

namespace trocr {

struct ServiceOptions {
  HttpServerOptions http;
  size_t max_images_per_request = 64;
  ImageLimits image_limits;
  BatcherOptions batching;
  // Lines decoded in flight where the engine can (greedy settings, CPU and CUDA engines): an image
  // joins the running batch at a decoding step instead of waiting for the whole batch to end.
  // Off here; `trocr serve --batching auto` (its default) turns it on for CUDA devices, where it
  // was faster at every load measured, open-loop arrivals included, and leaves the CPU engine on
  // whole batches, where it measured no faster, with a longer tail (docs/REPORT.md sec. 5).
  bool in_flight = false;
  // What one request may ask for in its generation settings.
  int max_beams = 8;
  int max_new_tokens = 256;
  int workers = 0;           // threads that read and decode requests (0: one per core)
  std::string access_log = "-";  // a file, "-" for standard output, "" for none
  std::string model_name = "trocr";
  // Print each batch's engine report (the CUDA engine's phase times and graph captures) to
  // standard output; the engines must have been made with EngineOptions::profile.
  bool log_engine_profile = false;
};

// One loaded copy of the model, on one device.
struct ServedEngine {
  std::string device;  // "cpu", "cuda:N": the label of its metrics
  const Recognizer* recognizer = nullptr;
};

class AccessLog;
class WorkerPool;
struct PendingAnswer;

// Listening starts before the model is loaded: /healthz answers at once, /readyz and the
// recognition routes answer 503 until start() hands over the loaded model.
class OcrService {
 public:
  explicit OcrService(ServiceOptions options);
  ~OcrService();
  int bind();  // listens; returns the port (a trocr::Error if it cannot)
  // Serves until shutdown() is called, then returns once accepted requests are answered.
  void run();
  // From any thread, once: recognition with these engines (at least one, all of the same model)
  // and these default settings. The recognizers must outlive the service.
  void start(std::vector<ServedEngine> engines, GenerationConfig generation);
  // Safe from another thread: stops accepting, answers what was accepted, drains the batcher.
  void shutdown();

 private:
  void handle(HttpRequest request, HttpReply reply);
  void recognize(HttpRequest request, HttpReply reply, bool kserve);
  void answer(const PendingAnswer& pending, const std::vector<BatchedResult>& results, const HttpReply& reply);
  RequestBatcher::Settings settings_for(const nlohmann::json& parameters) const;
  void observe(const HttpRequest& request, const HttpResponse& response, double latency_ms);

  ServiceOptions options_;
  std::vector<ServedEngine> engines_;  // these, defaults_ and batcher_ are set by start(), before loaded_
  RequestBatcher::Settings defaults_;
  ServiceMetrics metrics_;
  std::unique_ptr<AccessLog> access_log_;
  std::unique_ptr<WorkerPool> workers_;  // reads, decodes and answers requests off the I/O threads
  std::unique_ptr<RequestBatcher> batcher_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<bool> loaded_{false};
  std::atomic<bool> ready_{false};  // loaded and not shutting down
  std::mutex state_mutex_;  // start() and shutdown()
  bool stopping_ = false;
};

// The OpenAPI 3 document of these routes.
std::string openapi_document(const std::string& model_name);

}  // namespace trocr

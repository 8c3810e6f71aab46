#include "serve/ocr_service.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "image/box_list.h"
#include "serve/request_images.h"

namespace trocr {
namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void answer_error(httplib::Response& response, int status, const std::string& message) {
  response.status = status;
  response.set_content(nlohmann::json{{"error", message}}.dump() + "\n", "application/json");
}

}  // namespace

OcrService::OcrService(const Recognizer& recognizer, GenerationConfig generation, ServiceOptions options)
    : recognizer_(recognizer), generation_(std::move(generation)), options_(std::move(options)) {
  batcher_ = std::make_unique<RequestBatcher>(
      [this](const std::vector<RgbImage>& images) { return recognizer_.recognize(images, generation_); },
      options_.batching,
      [this](int batch_size, double inference_ms) { metrics_.observe_batch(batch_size, inference_ms); });
  server_ = std::make_unique<httplib::Server>();
  const size_t threads = size_t(std::max(1, options_.http_threads));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(options_.max_request_bytes);
  server_->set_tcp_nodelay(true);
  // httplib closes a keep-alive connection after 5 requests by default, and its listen backlog
  // is 5: under load the reconnects overflow the backlog and dropped SYNs cost a 1 s
  // retransmission (seen as a p99 of ~1 s on the device). Keep connections for long.
  server_->set_keep_alive_max_count(100000);
  add_routes();
}

OcrService::~OcrService() { shutdown(); }

void OcrService::add_routes() {
  server_->Post("/v1/recognize", [this](const httplib::Request& request, httplib::Response& response) {
    const auto start = Clock::now();
    if (!ready_) return answer_error(response, 503, "the service is shutting down");
    RequestImages parsed = read_request_images(request, options_.max_images_per_request, options_.image_limits);
    if (parsed.status != 200) return answer_error(response, parsed.status, parsed.error);
    const double decode_ms = milliseconds_since(start);
    const size_t count = parsed.images.size();
    const std::vector<Quadrilateral> boxes = std::move(parsed.boxes);
    auto futures = batcher_->submit(std::move(parsed.images));
    if (!futures) {
      if (!ready_) return answer_error(response, 503, "the service is shutting down");
      return answer_error(response, 503, fmt::format("the queue is full ({} images waiting); retry later",
                                                     batcher_->queued()));
    }
    nlohmann::json results = nlohmann::json::array();
    for (size_t i = 0; i < count; ++i) {
      BatchedResult result = (*futures)[i].get();
      if (!result.error.empty()) return answer_error(response, 500, "recognition failed: " + result.error);
      metrics_.observe_queue(result.queue_ms);
      const TextCandidate& best = result.recognition.best();
      results.push_back({{"name", parsed.names[i]},
                         {"text", best.text},
                         {"confidence", best.mean_token_probability},
                         {"min_token_probability", best.min_token_probability},
                         {"score", best.score},
                         {"batch_size", result.batch_size},
                         {"timings_ms", {{"queue", result.queue_ms}, {"inference", result.inference_ms}}}});
      if (!boxes.empty()) results.back()["box"] = box_json(boxes[i]);
    }
    metrics_.count_images(count);
    const double total_ms = milliseconds_since(start);
    metrics_.observe_request(total_ms);
    response.set_content(
        nlohmann::json{{"results", results}, {"timings_ms", {{"decode", decode_ms}, {"total", total_ms}}}}.dump() + "\n",
        "application/json");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    if (!ready_) return answer_error(response, 503, "not ready");
    response.set_content("ready\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics_.render(batcher_->queued(), ready_), "text/plain; version=0.0.4");
  });
  // Unknown paths and methods get a JSON message too (httplib sets the status already).
  server_->set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (response.body.empty()) {
      answer_error(response, response.status,
                   response.status == 413 ? "the request body is too large"
                                          : fmt::format("no route for {} {}", request.method, request.path));
    }
  });
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
    std::string message = "internal error";
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& failure) {
      message += std::string(": ") + failure.what();
    }
    answer_error(response, 500, message);
  });
  server_->set_logger([this](const httplib::Request&, const httplib::Response& response) {
    metrics_.count_response(response.status);
  });
}

int OcrService::bind() {
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
    if (port < 0) fail("serve: cannot bind {}", options_.host);
  } else if (!server_->bind_to_port(options_.host, port)) {
    fail("serve: cannot listen on {}:{} (in use, or no permission)", options_.host, port);
  }
  ready_ = true;
  return port;
}

void OcrService::run() { server_->listen_after_bind(); }

void OcrService::shutdown() {
  std::lock_guard<std::mutex> lock(shutdown_mutex_);  // the signal thread and run()'s caller both call it
  ready_ = false;
  if (server_) server_->stop();  // returns at once; run() returns when handlers have finished
  if (batcher_) batcher_->drain();
}

}  // namespace trocr

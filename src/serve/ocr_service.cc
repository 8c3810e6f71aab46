#include "serve/ocr_service.h"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/check.h"
#include "common/parallel.h"
#include "decoding/search.h"
#include "image/box_list.h"
#include "model/generation_overrides.h"
#include "serve/access_log.h"
#include "serve/recognize_request.h"

namespace trocr {

class WorkerPool {
 public:
  explicit WorkerPool(int threads) : pool_(size_t(threads)) {}
  template <typename Work>
  void post(Work work) {
    boost::asio::post(pool_, std::move(work));
  }
  void join() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

namespace {

using Clock = std::chrono::steady_clock;
const std::vector<std::string> kKserveOutputs = {"text", "confidence", "score"};

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump() + "\n";
  return response;
}

HttpResponse text_response(int status, std::string body, std::string type = "text/plain") {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = std::move(type);
  return response;
}

}  // namespace

// What a recognition request needs once its batch has run.
struct PendingAnswer {
  bool kserve;
  std::string id;  // KServe's request id
  std::vector<std::string> outputs;
  std::vector<std::string> names;
  std::vector<Quadrilateral> boxes;
  Clock::time_point start;
  double decode_ms;
};

namespace {

nlohmann::json candidate_json(const TextCandidate& candidate) {
  return {{"text", candidate.text},
          {"confidence", candidate.mean_token_probability},
          {"min_token_probability", candidate.min_token_probability},
          {"score", candidate.score}};
}

nlohmann::json v1_answer(const PendingAnswer& pending, const std::vector<BatchedResult>& results, double total_ms) {
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const Recognition& recognition = results[i].recognition;
    nlohmann::json item = candidate_json(recognition.best());
    item["name"] = pending.names[i];
    item["batch_size"] = results[i].batch_size;
    item["timings_ms"] = {{"queue", results[i].queue_ms}, {"inference", results[i].inference_ms}};
    if (recognition.candidates.size() > 1) {
      item["candidates"] = nlohmann::json::array();
      for (const TextCandidate& candidate : recognition.candidates) item["candidates"].push_back(candidate_json(candidate));
    }
    if (!pending.boxes.empty()) item["box"] = box_json(pending.boxes[i]);
    items.push_back(std::move(item));
  }
  return {{"results", items}, {"timings_ms", {{"decode", pending.decode_ms}, {"total", total_ms}}}};
}

nlohmann::json kserve_answer(const PendingAnswer& pending, const std::vector<BatchedResult>& results,
                             const std::string& model_name) {
  nlohmann::json answer = {{"model_name", model_name}, {"model_version", "1"}, {"outputs", nlohmann::json::array()}};
  if (!pending.id.empty()) answer["id"] = pending.id;
  const std::vector<std::string>& wanted = pending.outputs.empty() ? kKserveOutputs : pending.outputs;
  for (const std::string& name : wanted) {
    nlohmann::json data = nlohmann::json::array();
    for (const BatchedResult& result : results) {
      const TextCandidate& best = result.recognition.best();
      if (name == "text") data.push_back(best.text);
      if (name == "confidence") data.push_back(best.mean_token_probability);
      if (name == "score") data.push_back(best.score);
    }
    answer["outputs"].push_back({{"name", name},
                                 {"datatype", name == "text" ? "BYTES" : "FP32"},
                                 {"shape", {results.size()}},
                                 {"data", std::move(data)}});
  }
  return answer;
}

nlohmann::json model_metadata(const std::string& model_name) {
  auto tensor = [](const char* name, const char* type) {
    return nlohmann::json{{"name", name}, {"datatype", type}, {"shape", {-1}}};
  };
  return {{"name", model_name},
          {"versions", {"1"}},
          {"platform", "trocr-rt"},
          {"inputs", {tensor("images", "BYTES")}},
          {"outputs", {tensor("text", "BYTES"), tensor("confidence", "FP32"), tensor("score", "FP32")}}};
}

}  // namespace

OcrService::OcrService(ServiceOptions options) : options_(std::move(options)) {
  if (!options_.access_log.empty()) access_log_ = std::make_unique<AccessLog>(options_.access_log);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  workers_ = std::make_unique<WorkerPool>(options_.workers > 0 ? options_.workers : cores);
  server_ = std::make_unique<HttpServer>(
      options_.http, [this](HttpRequest request, HttpReply reply) { handle(std::move(request), std::move(reply)); },
      [this](const HttpRequest& request, const HttpResponse& response, double latency_ms) {
        observe(request, response, latency_ms);
      });
}

namespace {

// With --profile, lines in flight print where their time went every kReportEvery steps: the
// wall time beside the engine's GPU phases shows what the host and the admissions add.
class ProfiledStream : public RecognitionStream {
 public:
  ProfiledStream(std::unique_ptr<RecognitionStream> stream, std::string device)
      : stream_(std::move(stream)), device_(std::move(device)), since_(std::chrono::steady_clock::now()) {}
  int capacity() const override { return stream_->capacity(); }
  int active() const override { return stream_->active(); }
  void prepare(const std::vector<RgbImage>& images) override { stream_->prepare(images); }
  std::vector<int> admit_prepared() override { return stream_->admit_prepared(); }
  std::vector<std::pair<int, Recognition>> step() override {
    auto ended = stream_->step();
    ended_ += ended.size();
    if (++steps_ % kReportEvery == 0) {
      const auto now = std::chrono::steady_clock::now();
      const double wall_ms = std::chrono::duration<double, std::milli>(now - since_).count();
      fmt::print("engine {}: {} lines ended in {:.3f} ms wall: {}\n", device_, ended_, wall_ms, stream_->profile_report());
      since_ = now;
      ended_ = 0;
    }
    return ended;
  }

 private:
  static constexpr int kReportEvery = 200;
  std::unique_ptr<RecognitionStream> stream_;
  std::string device_;
  std::chrono::steady_clock::time_point since_;
  size_t ended_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

OcrService::~OcrService() {
  shutdown();
  workers_->join();
}

int OcrService::bind() { return server_->bind(); }

void OcrService::run() { server_->run(); }

void OcrService::start(std::vector<ServedEngine> engines, GenerationConfig generation) {
  std::lock_guard<std::mutex> lock(state_mutex_);
  if (stopping_ || loaded_) return;
  if (engines.empty()) fail("the service needs at least one engine");
  engines_ = std::move(engines);
  defaults_ = std::make_shared<const GenerationConfig>(std::move(generation));
  std::vector<RequestBatcher::Engine> runs;
  for (const ServedEngine& engine : engines_) {
    runs.push_back([this, engine](const std::vector<RgbImage>& images, const GenerationConfig& settings) {
      const auto started = std::chrono::steady_clock::now();
      auto results = engine.recognizer->recognize(images, settings);
      if (options_.log_engine_profile) {
        // The wall time beside the engine's phases shows what the host adds (preprocessing, waits).
        const double wall_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        const std::string report = engine.recognizer->profile_report();  // this worker's last call
        if (!report.empty()) {
          fmt::print("engine {}: batch of {} in {:.3f} ms wall: {}\n", engine.device, images.size(), wall_ms, report);
        }
      }
      return results;
    });
  }
  std::vector<RequestBatcher::StreamOpener> streams;  // none: whole batches only
  if (options_.in_flight) {
    for (const ServedEngine& engine : engines_) {
      const bool profiled = options_.log_engine_profile;
      streams.push_back([engine, profiled](const GenerationConfig& settings,
                                           int capacity) -> std::unique_ptr<RecognitionStream> {
        auto stream = engine.recognizer->open_stream(settings, capacity);
        if (!stream || !profiled) return stream;
        return std::make_unique<ProfiledStream>(std::move(stream), engine.device);
      });
    }
  }
  batcher_ = std::make_unique<RequestBatcher>(
      std::move(runs), options_.batching,
      [this](size_t engine, int batch_size, double inference_ms) {
        metrics_.observe_batch(engines_[engine].device, batch_size, inference_ms);
      },
      std::move(streams), options_.in_flight ? defaults_ : nullptr,  // opened before the server is ready
      [this](size_t engine, const std::string& error) {
        metrics_.count_stream_failure(engines_[engine].device);
        fmt::print(stderr, "trocr serve: {}: in-flight batching failed to start, whole batches until it does: {}\n",
                   engines_[engine].device, error);
      });
  loaded_ = true;
  ready_ = true;
}

void OcrService::shutdown() {
  std::lock_guard<std::mutex> lock(state_mutex_);  // the signal thread and run()'s caller both call it
  stopping_ = true;
  ready_ = false;
  server_->stop();                // run() returns once every accepted request is answered
  if (loaded_) batcher_->drain();  // runs what is queued; the answers go out through the workers
}

void OcrService::observe(const HttpRequest& request, const HttpResponse& response, double latency_ms) {
  metrics_.count_response(response.status);
  if (access_log_) access_log_->write(request, response, latency_ms);
}

// On an I/O thread: quick answers here, recognition on the workers.
void OcrService::handle(HttpRequest request, HttpReply reply) {
  const std::string& path = request.path;
  const bool get = request.method == "GET", post = request.method == "POST";
  auto no_route = [&] { reply.send(error_response(404, fmt::format("no route for {} {}", request.method, path))); };
  auto only = [&](bool allowed, const char* method) {
    if (allowed) return true;
    HttpResponse refusal = error_response(405, fmt::format("{} takes {} only", path, method));
    refusal.headers.emplace_back("Allow", method);
    reply.send(std::move(refusal));
    return false;
  };
  if (path == "/healthz") {
    if (only(get, "GET")) reply.send(text_response(200, "ok\n"));
  } else if (path == "/readyz") {
    if (only(get, "GET")) reply.send(ready_ ? text_response(200, "ready\n") : error_response(503, "not ready"));
  } else if (path == "/metrics") {
    if (only(get, "GET")) {
      const size_t queued = loaded_ ? batcher_->queued() : 0;
      reply.send(text_response(200, metrics_.render(queued, ready_, server_->open_connections()),
                               "text/plain; version=0.0.4"));
    }
  } else if (path == "/openapi.json") {
    if (only(get, "GET")) reply.send(text_response(200, openapi_document(options_.model_name), "application/json"));
  } else if (path == "/v1/recognize") {
    if (only(post, "POST")) {
      workers_->post([this, request = std::move(request), reply]() mutable { recognize(std::move(request), reply, false); });
    }
  } else if (path == "/v2") {
    if (only(get, "GET")) reply.send(json_response(200, {{"name", "trocr-rt"}, {"version", TROCR_VERSION}, {"extensions", nlohmann::json::array()}}));
  } else if (path == "/v2/health/live") {
    if (only(get, "GET")) reply.send(json_response(200, {{"live", true}}));
  } else if (path == "/v2/health/ready") {
    // KServe v2: 200 means true, a 4xx false.
    if (only(get, "GET")) reply.send(json_response(ready_ ? 200 : 400, {{"ready", bool(ready_)}}));
  } else if (path.rfind("/v2/models/", 0) == 0) {
    // /v2/models/NAME[/versions/1][/ready|/infer]
    std::string rest = path.substr(11);
    const std::string name = rest.substr(0, rest.find('/'));
    rest = rest.substr(name.size());
    if (rest.rfind("/versions/", 0) == 0) {
      const std::string version = rest.substr(10, rest.find('/', 10) - 10);
      if (version != "1") return reply.send(error_response(404, fmt::format("model {} has only version 1", name)));
      rest = rest.substr(10 + version.size());
    }
    if (name != options_.model_name) {
      return reply.send(error_response(404, fmt::format("no model '{}'; this server has '{}'", name, options_.model_name)));
    }
    if (rest.empty()) {
      if (only(get, "GET")) reply.send(json_response(200, model_metadata(options_.model_name)));
    } else if (rest == "/ready") {
      if (only(get, "GET")) reply.send(json_response(ready_ ? 200 : 400, {{"name", name}, {"ready", bool(ready_)}}));
    } else if (rest == "/infer") {
      if (only(post, "POST")) {
        workers_->post([this, request = std::move(request), reply]() mutable { recognize(std::move(request), reply, true); });
      }
    } else {
      no_route();
    }
  } else {
    no_route();
  }
}

// On a worker: read and decode the request, queue its images, answer when their batch has run.
void OcrService::recognize(HttpRequest request, HttpReply reply, bool kserve) {
  try {
    const auto start = Clock::now();
    if (!ready_) throw HttpError(503, loaded_ ? "the service is shutting down" : "the model is loading");
    if (kserve && !request.header("Inference-Header-Content-Length").empty()) {
      throw HttpError(400, "the binary tensor extension is not supported: send BYTES data as base64 strings in JSON");
    }
    RecognizeRequest parsed =
        kserve ? parse_kserve_request(request.body, options_.max_images_per_request)
               : parse_recognize_request(request.header("Content-Type"), std::move(request.body),
                                         options_.max_images_per_request);
    for (const std::string& output : parsed.outputs) {
      if (std::find(kKserveOutputs.begin(), kKserveOutputs.end(), output) == kKserveOutputs.end()) {
        throw HttpError(400, fmt::format("outputs: no output '{}' (there are text, confidence and score)", output));
      }
    }
    RequestBatcher::Settings settings = defaults_;
    if (!parsed.parameters.is_null()) settings = settings_for(parsed.parameters);
    RequestImages images = decode_request_images(parsed, options_.max_images_per_request, options_.image_limits);
    // Resized here, on this request's worker while the GPU runs other batches: in the batch worker
    // the resizing of a whole batch held the GPU idle (#17's serve gap); a batch only normalizes.
    const PreprocessConfig& preprocess = engines_.front().recognizer->preprocess_config();
    parallel_for(images.images.size(), [&](size_t i) {
      images.images[i] = resize_for_model(std::move(images.images[i]), preprocess);
    }, std::min<unsigned>(4, unsigned(images.images.size())));
    auto pending = std::make_shared<PendingAnswer>(PendingAnswer{kserve, parsed.id, std::move(parsed.outputs),
                                                                 std::move(images.names), std::move(images.boxes),
                                                                 start, milliseconds_since(start)});
    const bool queued = batcher_->submit(std::move(images.images), settings,
                                         [this, pending, reply](std::vector<BatchedResult> results) {
      workers_->post([this, pending, reply, results = std::move(results)] { answer(*pending, results, reply); });
    });
    if (!queued) {
      if (!ready_) throw HttpError(503, "the service is shutting down");
      throw HttpError(503, fmt::format("the queue is full ({} images waiting); retry later", batcher_->queued()));
    }
  } catch (const HttpError& error) {
    reply.send(error_response(error.status, error.what()));
  } catch (const Error& error) {
    reply.send(error_response(400, error.what()));
  } catch (const std::exception& error) {
    reply.send(error_response(500, fmt::format("internal error: {}", error.what())));
  }
}

void OcrService::answer(const PendingAnswer& pending, const std::vector<BatchedResult>& results, const HttpReply& reply) {
  for (const BatchedResult& result : results) {
    if (!result.error.empty()) return reply.send(error_response(500, "recognition failed: " + result.error));
  }
  for (const BatchedResult& result : results) metrics_.observe_queue(result.queue_ms);
  metrics_.count_images(results.size());
  const double total_ms = milliseconds_since(pending.start);
  metrics_.observe_request(total_ms);
  HttpResponse response = json_response(200, pending.kserve ? kserve_answer(pending, results, options_.model_name)
                                                            : v1_answer(pending, results, total_ms));
  response.images = results.size();
  reply.send(std::move(response));
}

// A request's own generation settings: HF's names over the server's, within the server's limits.
RequestBatcher::Settings OcrService::settings_for(const nlohmann::json& parameters) const {
  GenerationConfig settings = apply_generation_overrides(*defaults_, parameters, "parameters");
  if (settings.num_beams > options_.max_beams) {
    throw HttpError(400, fmt::format("parameters: num_beams {} is above this server's limit of {} (--request-max-beams)",
                                     settings.num_beams, options_.max_beams));
  }
  const int new_tokens = settings.resolved_max_length() - 1;
  if (new_tokens > options_.max_new_tokens) {
    throw HttpError(400, fmt::format("parameters: {} new tokens is above this server's limit of {} (--request-max-new-tokens)",
                                     new_tokens, options_.max_new_tokens));
  }
  validate(SearchOptions::from(settings), engines_.front().recognizer->model_config().decoder.max_position_embeddings);
  return std::make_shared<const GenerationConfig>(std::move(settings));
}

}  // namespace trocr

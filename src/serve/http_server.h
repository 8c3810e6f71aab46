#pragma once
// The service's HTTP/1.1 layer: event-driven (Boost.Beast on a few I/O threads), so that a
// connection costs no thread while it waits, with every limit that keeps slow, idle or lying
// clients from starving the others (HttpLimits). Each complete request goes to one handler,
// which answers through an HttpReply from any thread whenever its answer is ready.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trocr {

struct HttpLimits {
  std::chrono::milliseconds idle_timeout{60000};    // a kept-alive connection waiting for its next request
  std::chrono::milliseconds header_timeout{10000};  // from a request's first byte to its last header
  std::chrono::milliseconds body_timeout{60000};    // for the whole body, and for writing the answer
  size_t max_connections = 8192;
  size_t max_connections_per_client = 256;  // per peer address
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 32 << 20;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  int io_threads = 2;
  HttpLimits limits;
};

struct HttpRequest {
  std::string method, path, query;  // the target split at '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string client;  // the peer's address
  std::string id;      // X-Request-Id as sent (printable, at most 128 characters) or one made up
  std::chrono::steady_clock::time_point received;  // when the last header arrived
  // The first header of that name, compared without case; "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t images = 0;  // recognized for this request: for the access log
};

// The JSON body of every refusal, the server's own and the service's: {"error": message}.
HttpResponse error_response(int status, const std::string& message);

// The way back to a request's connection. Copyable; the first send() answers, later ones are
// ignored; if every copy is dropped without an answer, the client gets a 500.
class HttpReply {
 public:
  struct State;
  explicit HttpReply(std::shared_ptr<State> state) : state_(std::move(state)) {}
  void send(HttpResponse response) const;

 private:
  std::shared_ptr<State> state_;
};

class HttpServer {
 public:
  // Called on an I/O thread: it must not block (hand slow work to another thread).
  using Handler = std::function<void(HttpRequest request, HttpReply reply)>;
  // Called once per answer, the server's own refusals (400, 408, 413, 431, 503) included.
  using Observer = std::function<void(const HttpRequest& request, const HttpResponse& response, double latency_ms)>;

  HttpServer(HttpServerOptions options, Handler handler, Observer observer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int bind();  // listens; returns the port (a trocr::Error if it cannot)
  void run();  // serves on the I/O threads until stop() and every open connection has ended
  // Safe from any thread: stops accepting, closes connections waiting for a request, and lets
  // those with a request in progress answer it first.
  void stop();
  size_t open_connections() const;

 private:
  friend class Connection;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace trocr

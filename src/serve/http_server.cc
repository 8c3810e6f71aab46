#include "serve/http_server.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "common/check.h"

namespace trocr {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kLinger{2};  // at most, after a refusal

// X-Request-Id as the client sent it when it is short and printable, else a fresh one.
std::string request_id(const std::string& sent) {
  const bool usable = !sent.empty() && sent.size() <= 128 &&
                      std::all_of(sent.begin(), sent.end(), [](char c) { return c > ' ' && c < 127 && c != '"'; });
  if (usable) return sent;
  static std::atomic<uint64_t> counter{0};
  static const uint64_t prefix = std::random_device{}();
  return fmt::format("{:08x}-{:08x}", uint32_t(prefix), uint32_t(counter++));
}

}  // namespace

HttpResponse error_response(int status, const std::string& message) {
  HttpResponse response;
  response.status = status;
  response.body = nlohmann::json{{"error", message}}.dump() + "\n";
  return response;
}

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, beast::string_view(name.data(), name.size()))) return value;
  }
  return {};
}

class Connection;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpServerOptions options;
  Handler handler;
  Observer observer;
  asio::io_context io;
  tcp::acceptor acceptor{asio::make_strand(io)};  // its own strand: stop() closes it from outside
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  mutable std::mutex mutex;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> open;
  std::unordered_map<std::string, size_t> per_client;
  bool stopping = false;

  Impl(HttpServerOptions options_, Handler handler_, Observer observer_)
      : options(std::move(options_)), handler(std::move(handler_)), observer(std::move(observer_)) {
    keep_running.emplace(io.get_executor());
  }
  void accept();
  void admit(tcp::socket socket);
  void forget(Connection* connection, const std::string& client);
  void observe(const HttpRequest& request, const HttpResponse& response) {
    if (!observer) return;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - request.received).count();
    observer(request, response, ms);
  }
};

struct HttpReply::State {
  std::shared_ptr<Connection> connection;
  std::atomic<bool> sent{false};
  ~State();
};

// One client connection: reads a request (idle, header and body each under their deadline),
// hands it to the handler, writes the answer, and reads the next one if the client keeps it alive.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServer::Impl> server, tcp::socket socket, std::string client)
      : server_(std::move(server)), stream_(std::move(socket)), client_(std::move(client)) {}
  ~Connection() { server_->forget(this, client_); }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->await_request(); });
  }
  // From stop(): a connection between requests closes now, one with a request finishes it first.
  void stop() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (!self->busy_) self->close();
    });
  }
  // From any thread: the handler's answer.
  void deliver(HttpResponse response) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), response = std::move(response)]() mutable {
      self->write(std::move(response), /*keep_alive=*/self->keep_alive_);
    });
  }

 private:
  const HttpLimits& limits() const { return server_->options.limits; }

  void await_request() {
    if (closing_) return close();
    parser_.emplace();
    parser_->header_limit(uint32_t(std::min<size_t>(limits().max_header_bytes, UINT32_MAX)));
    parser_->body_limit(limits().max_body_bytes);
    request_ = HttpRequest{};
    request_.client = client_;
    request_.received = Clock::now();
    if (buffer_.size() > 0) return read_header();  // the client sent its next request already
    // Idle until the next request's first byte; its header then has its own deadline.
    stream_.expires_after(limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code error, size_t bytes) {
      if (error) return self->close();
      self->buffer_.commit(bytes);
      self->read_header();
    });
  }

  void read_header() {
    stream_.expires_after(limits().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code error, size_t) {
      if (error) return self->refuse_after(error, "the request header");
      self->request_.received = Clock::now();
      auto& message = self->parser_->get();
      if (beast::iequals(message[http::field::expect], "100-continue") && !self->parser_->is_done()) {
        self->continue_.emplace(http::status::continue_, message.version());
        self->stream_.expires_after(self->limits().body_timeout);
        http::async_write(self->stream_, *self->continue_, [self](beast::error_code error, size_t) {
          if (error) return self->close();
          self->read_body();
        });
        return;
      }
      self->read_body();
    });
  }

  void read_body() {
    stream_.expires_after(limits().body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code error, size_t) {
      if (error) return self->refuse_after(error, "the request body");
      self->dispatch_request();
    });
  }

  // A read failed: a client that went away is closed, one too slow is closed and logged with
  // 408, one that broke a limit or the protocol is told why first.
  void refuse_after(beast::error_code error, const char* part) {
    if (error == http::error::end_of_stream || error == asio::error::operation_aborted ||
        error == asio::error::eof || error == asio::error::connection_reset || error == http::error::partial_message) {
      return close();
    }
    request_.id = request_id("");
    // Refused before dispatch_request() read its line: logged as "-".
    request_.method = request_.path = "-";
    if (error == beast::error::timeout) {
      // The stream has closed the socket already: the 408 goes to the log only.
      server_->observe(request_, error_response(408, fmt::format("{} did not arrive in time", part)));
      return close();
    }
    if (error == http::error::header_limit) {
      return refuse(431, fmt::format("the request header is larger than {} bytes", limits().max_header_bytes));
    }
    if (error == http::error::body_limit) {
      return refuse(413, fmt::format("the request body is larger than {} bytes", limits().max_body_bytes));
    }
    refuse(400, fmt::format("{} is not valid HTTP/1.1 ({})", part, error.message()));
  }

  void refuse(int status, const std::string& message) {
    lingering_ = true;  // the client may still be sending what was refused
    write(error_response(status, message), /*keep_alive=*/false);
  }

  // After refusing a request whose body was not read: stop sending, and read and drop what the
  // client still sends for a moment, so that it gets to read the answer instead of a reset.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    discard();
  }
  void discard() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code error, size_t) {
      if (error) return self->close();
      self->discard();
    });
  }

  void dispatch_request() {
    auto message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    const std::string_view target(message.target().data(), message.target().size());
    const size_t question = target.find('?');
    request_.method = std::string(message.method_string().data(), message.method_string().size());
    request_.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) request_.query = std::string(target.substr(question + 1));
    for (const auto& field : message) {
      request_.headers.emplace_back(std::string(field.name_string().data(), field.name_string().size()),
                                    std::string(field.value().data(), field.value().size()));
    }
    request_.id = request_id(request_.header("X-Request-Id"));
    HttpRequest handed = request_;  // request_ keeps all but the body, for the access log
    handed.body = std::move(message.body());
    busy_ = true;
    auto state = std::make_shared<HttpReply::State>();
    state->connection = shared_from_this();
    try {
      server_->handler(std::move(handed), HttpReply(std::move(state)));
    } catch (...) {
      // Every copy of the reply is gone with the exception: State answers 500.
    }
  }

  void write(HttpResponse answer, bool keep_alive) {
    if (response_) return;  // one answer per request
    server_->observe(request_, answer);
    response_.emplace(http::int_to_status(unsigned(answer.status)), 11);
    response_->set(http::field::server, "trocr-rt");
    response_->set(http::field::content_type, answer.content_type);
    response_->set("X-Request-Id", request_.id);
    for (const auto& [name, value] : answer.headers) response_->set(name, value);
    response_->body() = std::move(answer.body);
    response_->keep_alive(keep_alive && !closing_);
    response_->prepare_payload();
    stream_.expires_after(limits().body_timeout);
    http::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code error, size_t) {
      // Beast reports end_of_stream for a written answer that closes the connection.
      const bool written = !error || error == http::error::end_of_stream;
      const bool again = written && self->response_->keep_alive();
      self->response_.reset();
      self->busy_ = false;
      if (!again) return self->lingering_ && written ? self->linger() : self->close();
      self->await_request();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  std::shared_ptr<HttpServer::Impl> server_;
  beast::tcp_stream stream_;
  std::string client_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> response_;  // the answer being written
  HttpRequest request_;
  bool keep_alive_ = false;
  bool busy_ = false;     // a request is with the handler or its answer is being written
  bool closing_ = false;  // the server stops: no further requests on this connection
  bool lingering_ = false;  // refused before its body was read
  std::array<char, 16384> scratch_;
};

HttpReply::State::~State() {
  if (!sent.exchange(true)) connection->deliver(error_response(500, "the request was not answered"));
}

// The connection is let go once answered: copies of the reply kept elsewhere (a finished batch
// holds them until the next one) must not keep it open.
void HttpReply::send(HttpResponse response) const {
  if (state_->sent.exchange(true)) return;
  const std::shared_ptr<Connection> connection = std::move(state_->connection);
  connection->deliver(std::move(response));
}

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](beast::error_code error, tcp::socket socket) {
    if (error == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!error) self->admit(std::move(socket));
    self->accept();
  });
}

// Within the limits a connection is served; beyond them it is told so and closed at once.
void HttpServer::Impl::admit(tcp::socket socket) {
  beast::error_code error;
  const tcp::endpoint peer = socket.remote_endpoint(error);
  if (error) return;
  const std::string client = peer.address().to_string();
  std::string refusal;
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopping) {
      refusal = "the service is shutting down";
    } else if (open.size() >= options.limits.max_connections) {
      refusal = fmt::format("the server has {} connections open, its limit", open.size());
    } else if (per_client[client] >= options.limits.max_connections_per_client) {
      refusal = fmt::format("{} has {} connections open, the limit per client", client, per_client[client]);
    } else {
      ++per_client[client];
      connection = std::make_shared<Connection>(shared_from_this(), std::move(socket), client);
      open.emplace(connection.get(), connection);
    }
  }
  // Outside the lock: the connection may be over, and forget() itself, before start() returns.
  if (connection) return connection->start();
  // A short, best-effort answer: the socket is new, so its send buffer has room for it.
  HttpRequest request;
  request.method = request.path = "-";
  request.client = client;
  request.received = Clock::now();
  request.id = request_id("");
  const HttpResponse response = error_response(503, refusal);
  observe(request, response);
  const std::string bytes = fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Retry-After: 1\r\nConnection: close\r\n\r\n{}",
      response.body.size(), response.body);
  socket.non_blocking(true, error);
  asio::write(socket, asio::buffer(bytes), error);
  socket.shutdown(tcp::socket::shutdown_send, error);
  socket.close(error);
}

void HttpServer::Impl::forget(Connection* connection, const std::string& client) {
  std::lock_guard<std::mutex> lock(mutex);
  open.erase(connection);
  if (--per_client[client] == 0) per_client.erase(client);
  if (stopping && open.empty()) keep_running.reset();
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler, Observer observer)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handler), std::move(observer))) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  Impl& impl = *impl_;
  beast::error_code error;
  const auto address = asio::ip::make_address(impl.options.host, error);
  if (error) fail("serve: '{}' is not an IP address to listen on", impl.options.host);
  const tcp::endpoint endpoint(address, uint16_t(impl.options.port));
  impl.acceptor.open(endpoint.protocol(), error);
  if (!error) impl.acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) impl.acceptor.bind(endpoint, error);
  if (!error) impl.acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    fail("serve: cannot listen on {}:{} ({})", impl.options.host, impl.options.port, error.message());
  }
  return impl.acceptor.local_endpoint().port();
}

void HttpServer::run() {
  impl_->accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, impl_->options.io_threads); ++i) threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& thread : threads) thread.join();
}

void HttpServer::stop() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->stopping = true;
    for (auto& [pointer, weak] : impl_->open) {
      if (auto connection = weak.lock()) open.push_back(std::move(connection));
    }
    if (impl_->open.empty()) impl_->keep_running.reset();
  }
  asio::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  for (auto& connection : open) connection->stop();
}

size_t HttpServer::open_connections() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->open.size();
}

}  // namespace trocr

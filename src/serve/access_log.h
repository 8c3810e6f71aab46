#pragma once
// One line per answered request (spdlog): time (UTC), request id, client, method, route, status,
// images and latency, as key=value pairs that log tools split without a schema.
#include <memory>
#include <string>

#include "serve/http_server.h"

namespace spdlog {
class logger;
}

namespace trocr {

class AccessLog {
 public:
  // `destination`: a file (appended to), or "-" for standard output.
  explicit AccessLog(const std::string& destination);
  ~AccessLog();
  void write(const HttpRequest& request, const HttpResponse& response, double latency_ms);

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace trocr

#include "serve/access_log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/check.h"

namespace trocr {

AccessLog::AccessLog(const std::string& destination) {
  try {
    std::shared_ptr<spdlog::sinks::sink> sink;
    if (destination == "-") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(destination);
    }
    logger_ = std::make_shared<spdlog::logger>("access", std::move(sink));
  } catch (const spdlog::spdlog_ex& error) {
    fail("serve: cannot open the access log {}: {}", destination, error.what());
  }
  logger_->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %v",
                                                                      spdlog::pattern_time_type::utc));
  logger_->flush_on(spdlog::level::info);  // a line per request is cheap next to recognizing it
}

AccessLog::~AccessLog() = default;

void AccessLog::write(const HttpRequest& request, const HttpResponse& response, double latency_ms) {
  logger_->info("id={} client={} method={} route={} status={} images={} latency_ms={:.2f}", request.id,
                request.client, request.method, request.path.empty() ? "-" : request.path, response.status,
                response.images, latency_ms);
}

}  // namespace trocr

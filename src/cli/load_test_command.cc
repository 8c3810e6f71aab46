// trocr load-test --url http://HOST:PORT --image FILE --concurrency 1,8,64 --seconds 10: closed-loop
// clients (each sends its next request when the last is answered, over one keep-alive connection)
// against a running `trocr serve`. Per concurrency: images/s, latency p50/p90/p99 and status
// codes; with --memory-every-s, the server's resident memory read from /metrics during the run
// (the soak test). With --rate 20,40 instead: open-loop arrivals (Poisson, that many requests per
// second), each request's latency counted from when it was due, so that a slow server cannot
// slow the arrivals down and hide its queue.
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "common/check.h"
#include "formats/mapped_file.h"

namespace trocr::cli {
namespace {

struct LoadTestArguments {
  std::string url = "http://127.0.0.1:8080";
  std::vector<std::string> images;
  std::string name = "load";
  std::vector<int> concurrency = {1, 8, 32};
  std::vector<double> rates;  // open loop instead: requests per second, one run each
  double seconds = 10;
  int images_per_request = 1;
  double memory_every_s = 0;
  std::string json_path;
};

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, size_t(fraction * values.size()))];
}

// The server's resident memory from its /metrics, or -1 if it cannot be read.
double server_resident_bytes(const std::string& url) {
  httplib::Client client(url);
  const auto response = client.Get("/metrics");
  if (!response || response->status != 200) return -1;
  const std::string name = "\nprocess_resident_memory_bytes ";
  const size_t at = response->body.find(name);
  return at == std::string::npos ? -1 : std::strtod(response->body.c_str() + at + name.size(), nullptr);
}

// Client c sends bodies[c], bodies[c + 1], ... in turn, so that mixed images (lines of different
// lengths) are in flight at every moment.
// Closed loop (rate 0): `clients` senders, each sending when its last answer came. Open loop: the
// requests are due at Poisson times of `rate` per second, sent by up to `clients` connections.
nlohmann::json run_level(const LoadTestArguments& arguments, const std::vector<std::string>& bodies,
                         const std::string& content_type, int clients, double rate = 0) {
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::map<int, uint64_t> statuses;
  uint64_t transport_errors = 0;
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  std::vector<Clock::time_point> due;  // open loop: when each request is due
  if (rate > 0) {
    std::mt19937_64 generator(1);
    std::exponential_distribution<double> gap(rate);
    for (double t = gap(generator); t < arguments.seconds; t += gap(generator)) {
      due.push_back(start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t)));
    }
  }
  std::atomic<size_t> next_due{0};
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client(arguments.url);
      size_t next = size_t(c);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);  // headers and body go out as two writes: no Nagle delay
      client.set_read_timeout(60, 0);
      std::vector<double> mine;
      std::map<int, uint64_t> my_statuses;
      uint64_t my_errors = 0;
      while (!stop) {
        auto sent = Clock::now();
        if (rate > 0) {
          const size_t index = next_due++;
          if (index >= due.size()) break;
          std::this_thread::sleep_until(due[index]);
          sent = due[index];  // late sends count their lateness
        }
        const auto response = client.Post("/v1/recognize", bodies[next++ % bodies.size()], content_type.c_str());
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
        if (!response) {
          ++my_errors;
          continue;
        }
        ++my_statuses[response->status];
        if (response->status == 200) mine.push_back(ms);
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      for (const auto& [status, count] : my_statuses) statuses[status] += count;
      transport_errors += my_errors;
    });
  }
  std::vector<nlohmann::json> memory;
  const auto deadline = start + std::chrono::duration<double>(arguments.seconds);
  auto next_sample = start;
  while (Clock::now() < deadline) {
    if (arguments.memory_every_s > 0 && Clock::now() >= next_sample) {
      memory.push_back({{"t_s", std::chrono::duration<double>(Clock::now() - start).count()},
                        {"resident_bytes", server_resident_bytes(arguments.url)}});
      next_sample += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arguments.memory_every_s));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (rate == 0) stop = true;  // open loop: every due request is sent and answered
  for (auto& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double images_per_s = latencies_ms.size() * arguments.images_per_request / elapsed;
  nlohmann::json record = {{"engine", "trocr-rt serve"},
                           {"name", arguments.name},
                           {"concurrency", clients},
                           {"mode", rate > 0 ? "open" : "closed"},
                           {"rate", rate},
                           {"images_per_request", arguments.images_per_request},
                           {"seconds", elapsed},
                           {"ok_requests", latencies_ms.size()},
                           {"images_per_s", images_per_s},
                           {"p50_ms", percentile(latencies_ms, 0.50)},
                           {"p90_ms", percentile(latencies_ms, 0.90)},
                           {"p99_ms", percentile(latencies_ms, 0.99)},
                           {"transport_errors", transport_errors}};
  for (const auto& [status, count] : statuses) record["statuses"][std::to_string(status)] = count;
  if (!memory.empty()) record["server_memory"] = memory;
  fmt::print("{:>11} {:>10.1f} {:>9.2f} {:>9.2f} {:>9.2f} {:>8} {}\n",
             rate > 0 ? fmt::format("{:g}/s", rate) : std::to_string(clients), images_per_s, record["p50_ms"].get<double>(),
             record["p90_ms"].get<double>(), record["p99_ms"].get<double>(), latencies_ms.size(),
             record.contains("statuses") ? record["statuses"].dump() : "{}");
  std::fflush(stdout);
  return record;
}

int run(const LoadTestArguments& arguments) {
  std::string content_type = "application/octet-stream";
  const std::string boundary = "trocr-load-test-boundary";
  if (arguments.images_per_request > 1) content_type = "multipart/form-data; boundary=" + boundary;
  std::vector<std::string> bodies;
  for (const std::string& path : arguments.images) {
    const std::string image = read_text_file(path);  // binary-safe
    if (arguments.images_per_request == 1) {
      bodies.push_back(image);
      continue;
    }
    std::string body;
    for (int i = 0; i < arguments.images_per_request; ++i) {
      body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + std::to_string(i) +
              "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + image + "\r\n";
    }
    bodies.push_back(body + "--" + boundary + "--\r\n");
  }
  if (server_resident_bytes(arguments.url) < 0) fail("{}: no trocr serve answers /metrics there", arguments.url);
  fmt::print("{:>11} {:>10} {:>9} {:>9} {:>9} {:>8} {}\n", arguments.rates.empty() ? "concurrency" : "rate",
             "images/s", "p50 ms", "p90 ms", "p99 ms", "requests", "statuses");
  nlohmann::json records = nlohmann::json::array();
  if (!arguments.rates.empty()) {
    // Enough connections that a request is not held back by the sender; within the server's
    // default per-client limit.
    for (double rate : arguments.rates) records.push_back(run_level(arguments, bodies, content_type, 200, rate));
  } else {
    for (int clients : arguments.concurrency) records.push_back(run_level(arguments, bodies, content_type, clients));
  }
  if (!arguments.json_path.empty()) {
    std::ofstream file(arguments.json_path);
    if (!(file << records.dump(1) << "\n")) fail("{}: cannot write", arguments.json_path);
  }
  return 0;
}

}  // namespace

Action add_load_test_command(CLI::App& app) {
  auto* command = app.add_subcommand("load-test", "Closed- or open-loop load against a running trocr serve");
  auto arguments = std::make_shared<LoadTestArguments>();
  command->add_option("--url", arguments->url, "The server")->capture_default_str();
  command->add_option("--image", arguments->images,
                      "Image files, sent in turn (each client starts at its own); one: sent in every request")
      ->required()->expected(1, -1);
  command->add_option("--name", arguments->name, "Name for the records")->capture_default_str();
  command->add_option("--concurrency", arguments->concurrency, "Client counts, one run each")
      ->delimiter(',')->capture_default_str();
  command->add_option("--rate", arguments->rates,
                      "Open loop instead: requests per second (Poisson arrivals), one run each; latency counts "
                      "from when a request was due")
      ->delimiter(',')->check(CLI::Range(0.01, 1e6));
  command->add_option("--seconds", arguments->seconds, "Duration of each run")->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  command->add_option("--images-per-request", arguments->images_per_request, "Images per request (multipart)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  command->add_option("--memory-every-s", arguments->memory_every_s,
                      "Sample the server's resident memory from /metrics this often (soak)")->check(CLI::Range(0.0, 3600.0));
  command->add_option("--json", arguments->json_path, "Write the records to this file");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

// trocr serve --model DIR --port N [--device cuda --max-batch N --max-wait-ms N ...]: the OCR
// service (see src/serve). `--device cuda` serves on every GPU of the host, `cuda:0,2` on those:
// a copy of the model and a batch worker per GPU, fed by one queue (`--instances N`: N of them per
// device, so that one prepares or runs a batch while another's runs). SIGTERM or SIGINT stop it
// gracefully: no new requests are taken, those accepted are answered, then the process exits 0.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <cstdio>
#include <future>
#include <thread>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/check.h"
#include "serve/ocr_service.h"
#ifdef TROCR_WITH_CUDA
#include "cuda/device_info.h"
#endif

namespace trocr::cli {
namespace {

struct ServeArguments {
  EngineFlags engine;
  GenerationFlags generation;
  ServiceOptions service;
  int max_wait_ms = 5;
  int instances = 1;  // engines per device
  std::string batching = "auto";
  std::string max_admission = "auto";
  int max_request_mb = 32;
  int max_header_kb = 16;
  double idle_timeout_s = 60, header_timeout_s = 10, body_timeout_s = 60;
  int64_t max_image_pixels = 16 << 20;
};

std::chrono::milliseconds seconds(double value) { return std::chrono::milliseconds(int64_t(value * 1000)); }

// Every open connection is a file descriptor: take what the system allows, and fit the
// connection limit under it.
void fit_connection_limit(HttpLimits& limits) {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return;
  if (files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    getrlimit(RLIMIT_NOFILE, &files);
  }
  const size_t usable = files.rlim_cur > 128 ? size_t(files.rlim_cur - 128) : 1;
  if (limits.max_connections > usable) {
    fmt::print("trocr serve: --max-connections lowered to {} (the process may open {} files)\n", usable,
               files.rlim_cur);
    limits.max_connections = usable;
  }
}

// The devices to serve on: "cuda" is every GPU, "cuda:0,2" a list; "cpu" and "cuda:N" one (checked
// when its engine is made). A list is checked here, before the server listens.
std::vector<std::string> serve_devices(const std::string& device) {
  if (device == "cuda") {
#ifdef TROCR_WITH_CUDA
    const CudaDevices found = query_cuda_devices();
    if (found.devices.empty()) fail("device 'cuda': {}", found.absent_because);
    std::vector<std::string> all;
    for (const auto& gpu : found.devices) all.push_back(fmt::format("cuda:{}", gpu.index));
    return all;
#else
    fail("device 'cuda': this build has no CUDA engine (configure with TROCR_CUDA=ON)");
#endif
  }
  if (device.rfind("cuda:", 0) != 0 || device.find(',') == std::string::npos) return {device};
  std::vector<std::string> listed;
  for (size_t begin = 5; begin <= device.size();) {
    const size_t end = std::min(device.find(',', begin), device.size());
    const std::string index = device.substr(begin, end - begin);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) {
      fail("device '{}': '{}' is not a GPU index", device, index);
    }
    const std::string entry = "cuda:" + index;
    if (std::find(listed.begin(), listed.end(), entry) != listed.end()) {
      fail("device '{}': {} is listed twice", device, entry);
    }
    listed.push_back(entry);
    begin = end + 1;
  }
  return listed;
}

// `instances` recognizers per device, all loaded side by side (each reads the checkpoint and
// uploads it); returned device by device, in the order of `devices`.
std::vector<std::unique_ptr<Recognizer>> load_recognizers(const std::string& model_dir, EngineOptions options,
                                                          const std::vector<std::string>& devices, int instances) {
  std::vector<std::future<std::unique_ptr<Recognizer>>> loading;
  for (size_t i = 0; i < devices.size() * size_t(instances); ++i) {
    options.device = devices[i / size_t(instances)];
    loading.push_back(std::async(std::launch::async, [model_dir, options] {
      return std::make_unique<Recognizer>(model_dir, options);
    }));
  }
  std::vector<std::unique_ptr<Recognizer>> recognizers;
  for (auto& loaded : loading) recognizers.push_back(loaded.get());  // rethrows the first failure
  return recognizers;
}

// The write end of the pipe that turns SIGTERM/SIGINT into a message for the waiting thread.
// A signal handler can reach nothing else: this is the one file-level variable, set once by run().
// (Blocking the signals instead does not work: libraries such as OpenBLAS start threads before
// main, and the kernel delivers the signal to any thread that does not block it.)
int stop_pipe_write_end = -1;

void on_stop_signal(int signal_number) {
  const char byte = char(signal_number);
  [[maybe_unused]] const ssize_t written = write(stop_pipe_write_end, &byte, 1);
}

int run(ServeArguments arguments) {
  int stop_pipe[2];
  if (pipe(stop_pipe) != 0) fail("serve: cannot create the signal pipe");
  stop_pipe_write_end = stop_pipe[1];
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  EngineOptions engine = arguments.engine.options();
  engine.batch_size = arguments.service.batching.max_batch;
  engine.profile = arguments.service.log_engine_profile;
  arguments.service.batching.max_wait = std::chrono::milliseconds(arguments.max_wait_ms);
  // auto: in flight on the GPU, where it served more images/s at a lower p50 at every measured
  // load; whole batches on the CPU, where each admission's encoder pass stalls the running lines
  // (REPORT sec. 5).
  const bool on_gpu = arguments.engine.device.rfind("cuda", 0) == 0;
  arguments.service.in_flight = arguments.batching == "in-flight" || (arguments.batching == "auto" && on_gpu);
  // auto: 8 images an admission on the GPU, where their encoder pass ends sooner than for every free
  // line at once (trocr-base at 128 clients: 99 lines in flight against 90, +9 to +11% images/s, p50
  // 79 -> 70 ms; REPORT sec. 5); as many as are free on the CPU (not measured there).
  arguments.service.batching.max_admission =
      arguments.max_admission == "auto" ? (on_gpu ? 8 : 0) : std::stoi(arguments.max_admission);
  HttpLimits& limits = arguments.service.http.limits;
  limits.max_body_bytes = size_t(arguments.max_request_mb) << 20;
  limits.max_header_bytes = size_t(arguments.max_header_kb) << 10;
  limits.idle_timeout = seconds(arguments.idle_timeout_s);
  limits.header_timeout = seconds(arguments.header_timeout_s);
  limits.body_timeout = seconds(arguments.body_timeout_s);
  fit_connection_limit(limits);
  arguments.service.image_limits.max_pixels = arguments.max_image_pixels;
  const std::vector<std::string> devices = serve_devices(arguments.engine.device);
  // Declared first, so that they outlive the service that borrows them.
  std::vector<std::unique_ptr<Recognizer>> recognizers;
  OcrService service(arguments.service);
  const int port = service.bind();
  std::thread signal_waiter([&] {
    char signal_number = 0;
    while (read(stop_pipe[0], &signal_number, 1) < 0 && errno == EINTR) {
    }
    if (signal_number == SIGTERM || signal_number == SIGINT) {
      fmt::print("trocr serve: {} received, finishing accepted requests\n", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
      std::fflush(stdout);
    }
    service.shutdown();
  });
  // Wakes the waiter when the server stops without a signal.
  auto wake_waiter = [&] {
    const char wake = 0;
    [[maybe_unused]] const ssize_t written = write(stop_pipe[1], &wake, 1);
  };
  fmt::print("trocr serve: listening on http://{}:{} (loading {})\n", arguments.service.http.host, port,
             arguments.engine.model_dir);
  std::fflush(stdout);
  std::thread server([&] { service.run(); });
  try {
    recognizers = load_recognizers(arguments.engine.model_dir, engine, devices, arguments.instances);
    std::vector<ServedEngine> served;
    for (size_t i = 0; i < recognizers.size(); ++i) {
      served.push_back({devices[i / size_t(arguments.instances)], recognizers[i].get()});
    }
    service.start(std::move(served), arguments.generation.apply_to(recognizers.front()->default_generation()));
  } catch (...) {
    service.shutdown();
    server.join();
    wake_waiter();
    signal_waiter.join();
    throw;
  }
  fmt::print("trocr serve: ready (model {}, {} {}, {} instance{} per device, {} batching{}, max batch {}, max wait {} ms, "
             "queue {}{})\n",
             arguments.engine.model_dir, fmt::join(devices, ","), arguments.engine.dtype, arguments.instances,
             arguments.instances == 1 ? "" : "s", arguments.service.in_flight ? "in-flight" : "whole",
             arguments.batching == "auto" ? " (auto)" : "", arguments.service.batching.max_batch, arguments.max_wait_ms,
             arguments.service.batching.queue_capacity,
             arguments.service.in_flight && arguments.service.batching.max_admission > 0
                 ? fmt::format(", max admission {}", arguments.service.batching.max_admission)
                 : "");
  std::fflush(stdout);
  server.join();
  service.shutdown();
  wake_waiter();
  signal_waiter.join();
  close(stop_pipe[0]);
  close(stop_pipe[1]);
  fmt::print("trocr serve: stopped\n");
  return 0;
}

}  // namespace

Action add_serve_command(CLI::App& app) {
  auto* command = app.add_subcommand("serve", "Run the HTTP OCR service (POST /v1/recognize)");
  auto arguments = std::make_shared<ServeArguments>();
  add_engine_flags(*command, arguments->engine, /*with_batch=*/false);
  command->get_option("--device")->description("cpu; cuda (every GPU), cuda:N, or a list such as cuda:0,1");
  add_generation_flags(*command, arguments->generation);
  ServiceOptions& service = arguments->service;
  HttpLimits& limits = service.http.limits;
  command->add_option("--host", service.http.host, "Address to listen on")->capture_default_str();
  command->add_option("--port", service.http.port, "Port (0: any free port)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  command->add_option("--max-batch", service.batching.max_batch, "Most images per engine batch")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  command->add_option("--instances", arguments->instances,
                      "Engines per device, each with its own copy of the model and batch worker: while one runs a "
                      "batch, another prepares or runs the next")
      ->capture_default_str()->check(CLI::Range(1, 16));
  command->add_option("--batching", arguments->batching,
                      "in-flight: images join the running batch between decoding steps and leave as their line "
                      "ends (greedy settings; beam search too on CUDA devices, with one returned sequence; otherwise whole batches); whole: every batch runs to its end; "
                      "auto: in-flight on CUDA devices, whole on the CPU")
      ->capture_default_str()->check(CLI::IsMember({"auto", "in-flight", "whole"}));
  command->add_option("--max-admission", arguments->max_admission,
                      "In flight: most images that join the running lines at once (0: as many lines as are free; "
                      "auto: 8 on CUDA devices, 0 on the CPU)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto"}) | CLI::Range(0, 4096));
  command->add_option("--max-wait-ms", arguments->max_wait_ms,
                      "Longest an image waits for its batch to fill")->capture_default_str()->check(CLI::Range(0, 60000));
  command->add_option("--queue-size", service.batching.queue_capacity,
                      "Images that may wait; requests beyond it get 503")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--max-images-per-request", service.max_images_per_request,
                      "More images (or boxes) in one request get 413")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  command->add_option("--max-request-mb", arguments->max_request_mb, "Larger request bodies get 413")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  command->add_option("--max-header-kb", arguments->max_header_kb, "Larger request headers get 431")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  command->add_option("--max-image-pixels", arguments->max_image_pixels, "Larger images get 400")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  command->add_option("--max-connections", limits.max_connections,
                      "Open connections in all; more are answered 503 and closed")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--max-connections-per-client", limits.max_connections_per_client,
                      "Open connections from one address; more are answered 503 and closed")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--idle-timeout-s", arguments->idle_timeout_s,
                      "A kept-alive connection with no new request is closed after this")->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  command->add_option("--header-timeout-s", arguments->header_timeout_s,
                      "A request's header must arrive within this of its first byte, else 408")->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  command->add_option("--body-timeout-s", arguments->body_timeout_s,
                      "A request's body must arrive within this of its header (and an answer be taken), else 408")
      ->capture_default_str()->check(CLI::Range(0.01, 86400.0));
  command->add_option("--io-threads", service.http.io_threads, "Threads that read and write connections")
      ->capture_default_str()->check(CLI::Range(1, 64));
  command->add_option("--workers", service.workers, "Threads that read and decode requests (0: one per core)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  command->add_option("--request-max-beams", service.max_beams, "Most beams one request may ask for")
      ->capture_default_str()->check(CLI::Range(1, 64));
  command->add_option("--request-max-new-tokens", service.max_new_tokens, "Most new tokens one request may ask for")
      ->capture_default_str()->check(CLI::Range(1, 1 << 16));
  command->add_option("--access-log", service.access_log,
                      "Where each answered request is logged: a file, - (standard output) or '' (nowhere)")
      ->capture_default_str();
  command->add_option("--model-name", service.model_name, "The model's name in KServe v2 routes")
      ->capture_default_str();
  command->add_flag("--profile", service.log_engine_profile,
                    "Print each batch's wall time, the host's preprocessing and the engine's phases and graph captures "
                    "(CUDA engine) to standard output");
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

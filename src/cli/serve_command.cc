// trocr serve --model DIR --port N [--device cuda:K --max-batch N --max-wait-ms N ...]: the OCR
// service (see src/serve). SIGTERM or SIGINT stop it gracefully: no new requests are taken,
// those accepted are answered, then the process exits 0.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/check.h"
#include "serve/ocr_service.h"

namespace trocr::cli {
namespace {

struct ServeArguments {
  EngineFlags engine;
  GenerationFlags generation;
  ServiceOptions service;
  int max_wait_ms = 5;
  int max_request_mb = 32;
  int64_t max_image_pixels = 16 << 20;
};

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
  const Recognizer recognizer(arguments.engine.model_dir, engine);
  arguments.service.batching.max_wait = std::chrono::milliseconds(arguments.max_wait_ms);
  arguments.service.max_request_bytes = size_t(arguments.max_request_mb) << 20;
  arguments.service.image_limits.max_pixels = arguments.max_image_pixels;
  OcrService service(recognizer, arguments.generation.apply_to(recognizer.default_generation()), arguments.service);
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
  fmt::print("trocr serve: listening on http://{}:{} (model {}, {} {}, max batch {}, max wait {} ms, queue {})\n",
             arguments.service.host, port, arguments.engine.model_dir, arguments.engine.device,
             arguments.engine.dtype, arguments.service.batching.max_batch, arguments.max_wait_ms,
             arguments.service.batching.queue_capacity);
  std::fflush(stdout);
  service.run();
  service.shutdown();
  const char wake = 0;  // wakes the waiter if no signal came
  [[maybe_unused]] const ssize_t written = write(stop_pipe[1], &wake, 1);
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
  add_generation_flags(*command, arguments->generation);
  command->add_option("--host", arguments->service.host, "Address to listen on")->capture_default_str();
  command->add_option("--port", arguments->service.port, "Port (0: any free port)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  command->add_option("--max-batch", arguments->service.batching.max_batch, "Most images per engine batch")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  command->add_option("--max-wait-ms", arguments->max_wait_ms,
                      "Longest an image waits for its batch to fill")->capture_default_str()->check(CLI::Range(0, 60000));
  command->add_option("--queue-size", arguments->service.batching.queue_capacity,
                      "Images that may wait; requests beyond it get 503")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  command->add_option("--max-images-per-request", arguments->service.max_images_per_request,
                      "More images in one request get 413")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  command->add_option("--max-request-mb", arguments->max_request_mb, "Larger request bodies get 413")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  command->add_option("--max-image-pixels", arguments->max_image_pixels, "Larger images get 400")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  command->add_option("--http-threads", arguments->service.http_threads,
                      "Connections served at once (each waits for its batch)")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  return [arguments]() { return run(*arguments); };
}

}  // namespace trocr::cli

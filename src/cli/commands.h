#pragma once
// Each subcommand registers its options on the app and returns the action to run.
#include <CLI/CLI.hpp>
#include <functional>

namespace trocr::cli {

using Action = std::function<int()>;

// Exit codes: 0 success, 1 a trocr::Error (bad model, bad image, ...), 2 bad usage.
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

Action add_inspect_command(CLI::App& app);
Action add_recognize_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_compare_command(CLI::App& app);
#ifdef TROCR_WITH_SERVE
Action add_serve_command(CLI::App& app);
Action add_load_test_command(CLI::App& app);
#endif
Action add_bench_command(CLI::App& app);
Action add_devices_command(CLI::App& app);

}  // namespace trocr::cli

// trocr: the command-line front end. One file per subcommand; this one dispatches.
#include <cstdio>
#include <map>
#include <vector>

#include "cli/commands.h"
#include "trocr/error.h"

int main(int argc, char** argv) {
  CLI::App app{"trocr-rt: fast TrOCR inference (HF VisionEncoderDecoder checkpoints)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "trocr-rt 0.1.0");
  std::map<CLI::App*, trocr::cli::Action> actions;
  std::vector<trocr::cli::Action (*)(CLI::App&)> commands = {
      trocr::cli::add_recognize_command, trocr::cli::add_eval_command, trocr::cli::add_compare_command,
      trocr::cli::add_inspect_command,   trocr::cli::add_bench_command, trocr::cli::add_devices_command};
#ifdef TROCR_WITH_SERVE
  commands.push_back(trocr::cli::add_serve_command);
  commands.push_back(trocr::cli::add_load_test_command);
#endif
  for (auto add : commands) {
    const size_t before = app.get_subcommands({}).size();
    trocr::cli::Action action = add(app);
    actions[app.get_subcommands({})[before]] = std::move(action);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);  // prints help, version or the usage error
    return code == 0 ? 0 : trocr::cli::kExitUsage;
  }
  try {
    for (auto& [subcommand, action] : actions) {
      if (subcommand->parsed()) return action();
    }
  } catch (const trocr::Error& error) {
    std::fprintf(stderr, "trocr: error: %s\n", error.what());
    return trocr::cli::kExitError;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "trocr: internal error: %s\n", error.what());
    return trocr::cli::kExitError;
  }
  return 0;
}

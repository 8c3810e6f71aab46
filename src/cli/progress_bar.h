#pragma once
// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and pipes stay
// clean).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace trocr::cli {

class ProgressBar {
 public:
  explicit ProgressBar(size_t total) : total_(total), enabled_(isatty(fileno(stderr)) != 0) {}
  ~ProgressBar() { finish(); }

  void update(size_t done) {
    if (!enabled_) return;
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const size_t width = 30;
    const size_t filled = total_ == 0 ? width : width * done / total_;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu  %.1f images/s ", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_, seconds > 0 ? done / seconds : 0.0);
    std::fflush(stderr);
    drawn_ = true;
  }

  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  size_t total_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now();
};

}  // namespace trocr::cli

// Lines in flight on the GPU (line_batch.h), greedy or beam search.
#include "cuda/line_batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <type_traits>

#include "common/check.h"
#include "cuda/cuda_check.h"

namespace trocr::cuda {
namespace {

// In-flight lines on the GPU (LineBatch): a workspace of their own, planned for `capacity` lines
// and a scratch line, in which line l decodes image slot l (its cross-attention K/V) with its
// beams (one for greedy search) in cache slots l * beams ... at its own position. Search is the
// workspace's DeviceGreedySearch or DeviceBeamSearch, which own the lines' state. Admitted images
// are encoded together, their K/V written into their lines' slots; every step runs the active
// lines' rows and reads the lines' states back, so that ended lines leave and their slots take
// the next images. Above kExactLines lines the line count is rounded up to a multiple of
// kExactLines with padding rows of the scratch line, so that a server captures ~capacity / 8 + 8
// step graphs, not one per line count (17 in a minute of trocr-base at 128 clients; 185-215
// before).
template <typename T, typename Search>
class CudaLineBatch : public LineBatch {
 public:
  CudaLineBatch(const LineBatchHost<T>& host, const SearchOptions& options, int capacity)
      : host_(host), options_(options), steps_(capacity, -1) {
    use_device();
    workspace_ = std::make_unique<Workspace<T>>(host_.weights, host_.config, host_.gemm,
                                                DecodePlan{capacity + 1, beams(), options.max_length});
    workspace_->states.clear_slot(scratch_line());
    search().start_scratch_line(scratch_line(), options_);
    host_.grow_pixel_buffers(workspace_->encoder.chunk());
    // Per-layer K/V in every slot; greedy lines keep their states by slot too where a step of
    // them may attend over the encoder states (the chooser takes it from some row count on).
    folded_ = kGreedy && workspace_->step.choose_cross_attention(capacity, /*greedy=*/true) ==
                             CrossAttentionKernel::OverEncoderStates;
    if (folded_) workspace_->states.keep_states_by_slot();
    for (int line = capacity - 1; line >= 0; --line) free_.push_back(line);
    if (host_.profile) {
      for (auto& mark : marks_) TROCR_CUDA_CHECK(cudaEventCreate(&mark));
    }
    host_.synchronize();
  }
  ~CudaLineBatch() override {
    cudaSetDevice(host_.device);
    cudaStreamSynchronize(host_.gemm.stream());
    for (auto& mark : marks_) {
      if (mark != nullptr) cudaEventDestroy(mark);
    }
  }

  int capacity() const override { return static_cast<int>(steps_.size()); }
  int active() const override { return capacity() - static_cast<int>(free_.size()); }

  std::vector<int> admit(const float* pixels, int count) override {
    if (count > static_cast<int>(free_.size())) fail("line batch: {} images for {} free lines", count, free_.size());
    if (count <= 0) return {};
    use_device();
    std::vector<int> lines(free_.end() - count, free_.end());  // the lowest free lines, ascending
    std::reverse(lines.begin(), lines.end());
    free_.resize(free_.size() - count);
    if (admission_pending_) add_elapsed(kAdmitted, admission_ms_);  // two admissions without a step
    mark(kAdmitting);
    host_.encode(*workspace_, pixels, count);
    workspace_->states.prepare_slots(lines);
    search().start_lines(lines, options_);
    mark(kAdmitted);
    admission_pending_ = host_.profile;
    ++admissions_;
    admitted_ += count;
    for (int line : lines) steps_[line] = 0;
    rows_changed_ = true;
    return lines;
  }

  std::vector<Ended> step() override {
    std::vector<int> lines;
    for (int line = 0; line < capacity(); ++line) {
      if (steps_[line] >= 0) lines.push_back(line);
    }
    if (lines.empty()) return {};
    use_device();
    if (rows_changed_) {
      // Each padding line follows a line: no two neighbours share an image, so the grouped
      // cross-attention's group count (part of the step's graph key) is the rounded line count.
      const int count = static_cast<int>(lines.size());
      const int rounded = count > kExactLines ? (count + kExactLines - 1) / kExactLines * kExactLines : count;
      const int padding = std::min(rounded, capacity()) - count;
      std::vector<int> slots, images;
      const auto add_line = [&](int line) {
        for (int beam = 0; beam < beams(); ++beam) slots.push_back(line * beams() + beam), images.push_back(line);
      };
      for (int i = 0; i < count; ++i) {
        add_line(lines[i]);
        if (i < padding) add_line(scratch_line());
      }
      const int rows = static_cast<int>(slots.size());
      const CrossAttentionKernel cross = workspace_->step.choose_cross_attention(rows, /*greedy=*/folded_);
      shape_ = workspace_->step.set_rows(slots, images, options_.max_length, cross, RowPositions::PerImage);
      rows_changed_ = false;
    }
    mark(kStepping);
    search().step_lines(shape_, options_, scratch_line());
    mark(kStepped);
    const auto states = search().read_lines();
    if (host_.profile) {
      if (admission_pending_) add_elapsed(kAdmitted, admission_ms_);
      add_elapsed(kStepped, step_ms_);
      ++steps_taken_;
      rows_stepped_ += static_cast<int64_t>(lines.size());
    }
    std::vector<Ended> ended;
    for (int line : lines) {
      // A line of n steps holds n + 1 tokens: it ends when its search says so (end-of-sequence,
      // or a beam search's stopping rule) or at max_length.
      if (!states.finished[line] && ++steps_[line] + 1 < options_.max_length) continue;
      ended.push_back({line, search().line_hypothesis(states, line, options_)});
      steps_[line] = -1;
      free_.push_back(line);
      rows_changed_ = true;
    }
    // Free lines are taken lowest first, so that admitted images sit in runs of slots (admit takes
    // from the back, which keeps the order; only lines ending here can break it).
    if (!ended.empty()) std::sort(free_.begin(), free_.end(), std::greater<int>());
    return ended;
  }

  std::string profile_report() override {
    if (!host_.profile || steps_taken_ == 0) return "";
    const std::string report = fmt::format(
        "{} steps of {:.1f} lines on average: {:.3f} ms; {} admissions of {:.1f} images on average: pixels upload + "
        "encoder + cross-attention K/V {:.3f} ms; step graphs captured so far: {}",
        steps_taken_, double(rows_stepped_) / steps_taken_, step_ms_, admissions_,
        admissions_ > 0 ? double(admitted_) / admissions_ : 0.0, admission_ms_, workspace_->graphs.captures());
    steps_taken_ = admissions_ = admitted_ = 0;
    rows_stepped_ = 0;
    step_ms_ = admission_ms_ = 0.0;
    return report;
  }

 private:
  // Profiling (the backend's `profile`): CUDA events around each admission's and each step's
  // GPU work, read once the step's sync has passed them.
  enum Mark { kAdmitting, kAdmitted, kStepping, kStepped };
  // Up to this many lines a step runs exactly the active lines (few-row products cost by the row).
  static constexpr int kExactLines = 8;
  static constexpr bool kGreedy = std::is_same_v<Search, DeviceGreedySearch<T>>;
  Search& search() {
    if constexpr (kGreedy) {
      return workspace_->greedy;
    } else {
      return workspace_->beams;
    }
  }
  int beams() const { return kGreedy ? 1 : options_.num_beams; }
  int scratch_line() const { return capacity(); }
  void use_device() const { TROCR_CUDA_CHECK(cudaSetDevice(host_.device)); }
  void mark(Mark which) {
    if (host_.profile) TROCR_CUDA_CHECK(cudaEventRecord(marks_[which], host_.gemm.stream()));
  }
  void add_elapsed(Mark end, double& total) {
    TROCR_CUDA_CHECK(cudaEventSynchronize(marks_[end]));
    float ms = 0.0f;
    TROCR_CUDA_CHECK(cudaEventElapsedTime(&ms, marks_[end - 1], marks_[end]));
    total += ms;
    if (end == kAdmitted) admission_pending_ = false;
  }

  const LineBatchHost<T> host_;
  const SearchOptions options_;
  std::unique_ptr<Workspace<T>> workspace_;
  bool folded_ = false;  // steps may attend over the states kept by slot
  std::vector<int> steps_;  // by line: steps taken, -1 where free
  std::vector<int> free_;   // descending: back() is the lowest
  bool rows_changed_ = true;
  StepShape shape_{};
  cudaEvent_t marks_[4] = {};
  bool admission_pending_ = false;
  int steps_taken_ = 0, admissions_ = 0, admitted_ = 0;
  int64_t rows_stepped_ = 0;
  double step_ms_ = 0.0, admission_ms_ = 0.0;
};

}  // namespace

template <typename T>
std::unique_ptr<LineBatch> open_line_batch(const LineBatchHost<T>& host, const SearchOptions& options, int capacity) {
  if (options.num_beams == 1) return std::make_unique<CudaLineBatch<T, DeviceGreedySearch<T>>>(host, options, capacity);
  return std::make_unique<CudaLineBatch<T, DeviceBeamSearch<T>>>(host, options, capacity);
}

template std::unique_ptr<LineBatch> open_line_batch<float>(const LineBatchHost<float>&, const SearchOptions&, int);
template std::unique_ptr<LineBatch> open_line_batch<__half>(const LineBatchHost<__half>&, const SearchOptions&, int);
template std::unique_ptr<LineBatch> open_line_batch<__nv_bfloat16>(const LineBatchHost<__nv_bfloat16>&,
                                                                   const SearchOptions&, int);

}  // namespace trocr::cuda

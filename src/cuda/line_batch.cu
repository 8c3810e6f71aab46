// Lines in flight on the GPU (line_batch.h), greedy or beam search.
#include "cuda/line_batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <type_traits>

#include "common/check.h"
#include "cuda/cuda_check.h"
#include "cuda/stream.h"

namespace trocr::cuda {
namespace {

// In-flight lines on the GPU (LineBatch): a workspace of their own, planned for `capacity` lines
// and a scratch line, in which line l decodes image slot l (its cross-attention K/V) with its
// beams (one for greedy search) in cache slots l * beams ... at its own position. Search is the
// workspace's DeviceGreedySearch or DeviceBeamSearch, which own the lines' state.
//
// Admitted images are encoded on the line batch's encoding stream while the running lines keep
// stepping on the backend's stream (which the GPU serves first): the next step enqueues their
// upload, encoder pass and slots (host work hidden behind the step's GPU work), and they start
// at the first step after that pass is done. Greedy lines whose steps attend over the encoder
// states skip the per-layer K/V; a step that wants them after all computes the missing ones.
// Every step runs the stepping lines' rows, and the states it leaves are read back while the next
// step runs (a line's end is learned a step late), so that ended lines leave and their slots take
// the next images. Above kExactLines lines the line count is rounded
// up to a multiple of kExactLines with padding rows of the scratch line, so that a server captures
// ~capacity / 8 + 8 step graphs, not one per line count (17 in a minute of trocr-base at 128
// clients; 185-215 before).
template <typename T, typename Search>
class CudaLineBatch : public LineBatch {
 public:
  CudaLineBatch(const LineBatchHost<T>& host, const SearchOptions& options, int capacity)
      : host_(host), options_(options), steps_(capacity, kFree), key_values_(capacity + 1, true) {
    use_device();
    encoding_stream_ = std::make_unique<Stream>(StreamPriority::Low);
    encoding_gemm_ = std::make_unique<Gemm>(encoding_stream_->get());
    workspace_ = std::make_unique<Workspace<T>>(host_.weights, host_.config, host_.gemm, *encoding_gemm_,
                                                DecodePlan{capacity + 1, beams(), options.max_length});
    workspace_->states.clear_slot(scratch_line());
    search().start_scratch_line(scratch_line(), options_);
    host_.grow_pixel_buffers(workspace_->encoder.chunk());
    // Admissions come in batches of any size: what each size needs is built now, not at its first
    // admission (cuDNN's plans, ~40 ms each, stalled a new server's first seconds: p99 ~0.5 s).
    workspace_->encoder.prepare_every_batch();
    // Greedy lines keep their states by slot where a step of them may attend over the encoder
    // states (the chooser takes it from some row count on).
    folded_ = kGreedy && workspace_->step.choose_cross_attention(capacity, /*greedy=*/true,
                                                                 /*key_values_computed=*/false) ==
                             CrossAttentionKernel::OverEncoderStates;
    if (folded_) workspace_->states.keep_states_by_slot();
    for (int line = capacity - 1; line >= 0; --line) free_.push_back(line);
    const unsigned flags = host_.profile ? cudaEventDefault : cudaEventDisableTiming;
    for (auto& events : admission_events_) {
      for (auto& event : events) TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&event, flags));
    }
    TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&key_values_done_, cudaEventDisableTiming));
    TROCR_CUDA_CHECK(cudaEventCreateWithFlags(&stepped_, cudaEventDisableTiming));
    if (host_.profile) {
      for (auto& marks : marks_) {
        for (auto& mark : marks) TROCR_CUDA_CHECK(cudaEventCreate(&mark));
      }
    }
    host_.synchronize();
    TROCR_CUDA_CHECK(cudaStreamSynchronize(encoding_stream_->get()));
  }
  ~CudaLineBatch() override {
    cudaSetDevice(host_.device);
    cudaStreamSynchronize(host_.gemm.stream());
    cudaStreamSynchronize(encoding_stream_->get());
    for (auto& marks : marks_) {
      for (cudaEvent_t event : marks) destroy(event);
    }
    destroy(stepped_);
    for (auto& events : admission_events_) {
      for (cudaEvent_t event : events) destroy(event);
    }
    destroy(key_values_done_);
  }

  int capacity() const override { return static_cast<int>(steps_.size()); }
  int active() const override { return capacity() - static_cast<int>(free_.size()); }

  std::vector<int> admit(const float* pixels, int count) override {
    if (count > static_cast<int>(free_.size())) fail("line batch: {} images for {} free lines", count, free_.size());
    if (count <= 0) return {};
    use_device();
    // The backend's two pixel buffers: a third admission's upload would wait for the first's
    // encoder pass, and with it the next step's wait for the uploads.
    if (queued_.size() + pending_.size() == kMaxPending) {
      encode_queued();
      start_admission();
    }
    std::vector<int> lines(free_.end() - count, free_.end());  // the lowest free lines, ascending
    std::reverse(lines.begin(), lines.end());
    free_.resize(free_.size() - count);
    for (int line : lines) steps_[line] = kEncoding;
    queued_.push_back({pixels, lines});
    return lines;
  }

  std::vector<Ended> step() override {
    use_device();
    start_encoded_admissions();
    std::vector<int> lines = launchable_lines();
    if (lines.empty() && unread_ < 0) {  // nothing to hide the encoder's launches behind
      encode_queued();
      start_encoded_admissions();
      lines = launchable_lines();
      if (lines.empty()) return {};
    }
    // This step is launched before the last one's states are read: the GPU never waits for the
    // host's turn. Lines that ended in the last step run once more (their rows change nothing
    // that is read), and their slots are written again only after this step (encode_queued).
    const int reading = unread_;
    unread_ = -1;
    if (!lines.empty()) {
      if (lines != row_lines_) set_rows(lines);
      const int buffer = launches_++ % 2;
      mark(buffer, kStepping);
      search().step_lines(shape_, options_, scratch_line());
      mark(buffer, kStepped);
      TROCR_CUDA_CHECK(cudaEventRecord(stepped_, host_.gemm.stream()));
      search().copy_lines(buffer);
      launched_[buffer].clear();
      for (int line : lines) launched_[buffer].push_back({line, ++steps_[line]});
      unread_ = buffer;
    }
    encode_queued();  // while the step runs
    if (uploads_outstanding_) host_.wait_for_uploads();
    uploads_outstanding_ = false;
    if (reading < 0) return {};
    const auto states = search().copied_lines(reading);
    if (host_.profile) {
      add_elapsed(marks_[reading][kStepping], marks_[reading][kStepped], step_ms_);
      ++steps_taken_;
      rows_stepped_ += static_cast<int64_t>(launched_[reading].size());
    }
    std::vector<Ended> ended;
    for (const auto& [launched_line, steps] : launched_[reading]) {
      const int line = launched_line;  // a lambda below captures it
      // A line of n steps holds n + 1 tokens: it ends when its search says so (end-of-sequence,
      // or a beam search's stopping rule) or at max_length.
      if (!states.finished[line] && steps + 1 < options_.max_length) continue;
      ended.push_back({line, search().line_hypothesis(states, line, options_)});
      steps_[line] = kFree;
      free_.push_back(line);
      if (unread_ >= 0) {  // its row in the step just launched changes nothing that is read
        auto& next = launched_[unread_];
        next.erase(std::remove_if(next.begin(), next.end(), [&](const auto& run) { return run.first == line; }),
                   next.end());
      }
    }
    // Free lines are taken lowest first, so that admitted images sit in runs of slots (admit takes
    // from the back, which keeps the order; only lines ending here can break it).
    if (!ended.empty()) std::sort(free_.begin(), free_.end(), std::greater<int>());
    return ended;
  }

  std::string profile_report() override {
    if (!host_.profile || steps_taken_ == 0) return "";
    const std::string report = fmt::format(
        "{} steps of {:.1f} lines on average: {:.3f} ms; {} admissions of {:.1f} images on average, beside the steps: "
        "pixels upload + encoder + cross-attention K/V {:.3f} ms, {} of them waited for, {} images without per-layer "
        "K/V; step graphs captured so far: {}",
        steps_taken_, double(rows_stepped_) / steps_taken_, step_ms_, admissions_,
        admissions_ > 0 ? double(admitted_) / admissions_ : 0.0, admission_ms_, admissions_waited_for_,
        admitted_without_key_values_, workspace_->graphs.captures());
    steps_taken_ = admissions_ = admitted_ = admissions_waited_for_ = admitted_without_key_values_ = 0;
    rows_stepped_ = 0;
    step_ms_ = admission_ms_ = 0.0;
    return report;
  }

 private:
  // Profiling (the backend's `profile`): CUDA events around each step's GPU work, read once the
  // step's sync has passed them.
  enum Mark { kStepping, kStepped };
  // An admission's events, on the encoding stream: begun (profiling only), and encoded (its
  // lines' states, and K/V where computed, are in their slots).
  enum AdmissionMark { kBegun, kEncoded };
  struct Queued {  // admitted, not yet enqueued
    const float* pixels;
    std::vector<int> lines;
  };
  struct Admission {  // enqueued on the encoding stream
    std::vector<int> lines;
    int events;  // its admission_events_
  };
  static constexpr int kMaxPending = 2;
  static constexpr int kFree = -1, kEncoding = -2;  // steps_ of a free line, of one not yet started
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
  static void destroy(cudaEvent_t event) {
    if (event != nullptr) cudaEventDestroy(event);
  }
  // Over the states only where they are kept by slot.
  CrossAttentionKernel choose_cross_attention(int rows, bool key_values_computed) const {
    return workspace_->step.choose_cross_attention(rows, /*greedy=*/folded_, key_values_computed);
  }
  // The started lines below max_length (a line of n steps holds n + 1 tokens).
  std::vector<int> launchable_lines() const {
    std::vector<int> lines;
    for (int line = 0; line < capacity(); ++line) {
      if (steps_[line] >= 0 && steps_[line] + 1 < options_.max_length) lines.push_back(line);
    }
    return lines;
  }

  // The step's rows: each padding line follows a line, so that no two neighbours share an image
  // and the grouped cross-attention's group count (part of the step's graph key) is the rounded
  // line count. Lines without K/V get them here where the chosen cross-attention reads them.
  void set_rows(const std::vector<int>& lines) {
    const int count = static_cast<int>(lines.size());
    const int rounded = count > kExactLines ? (count + kExactLines - 1) / kExactLines * kExactLines : count;
    const int padding = std::min(rounded, capacity()) - count;
    std::vector<int> slots, images, missing;
    const auto add_line = [&](int line) {
      for (int beam = 0; beam < beams(); ++beam) slots.push_back(line * beams() + beam), images.push_back(line);
    };
    for (int i = 0; i < count; ++i) {
      add_line(lines[i]);
      if (!key_values_[lines[i]]) missing.push_back(lines[i]);
      if (i < padding) add_line(scratch_line());
    }
    const int rows = static_cast<int>(slots.size());
    CrossAttentionKernel cross = choose_cross_attention(rows, missing.empty());
    if (cross != CrossAttentionKernel::OverEncoderStates && !missing.empty()) {
      workspace_->states.key_values_from_kept_states(missing);
      TROCR_CUDA_CHECK(cudaEventRecord(key_values_done_, encoding_stream_->get()));
      TROCR_CUDA_CHECK(cudaStreamWaitEvent(host_.gemm.stream(), key_values_done_));
      for (int line : missing) key_values_[line] = true;
      cross = choose_cross_attention(rows, true);
    }
    shape_ = workspace_->step.set_rows(slots, images, options_.max_length, cross, RowPositions::PerImage);
    row_lines_ = lines;
  }

  // Enqueues the queued admissions' uploads, encoder passes and slots on the encoding stream.
  // Their images skip the per-layer K/V where the steps, with them joined, attend over the states.
  void encode_queued() {
    const cudaStream_t encoding = encoding_stream_->get();
    const bool key_values = choose_cross_attention(active(), /*key_values_computed=*/false) !=
                            CrossAttentionKernel::OverEncoderStates;
    for (Queued& queued : queued_) {
      const int events = admissions_issued_++ % kMaxPending;
      if (host_.profile) TROCR_CUDA_CHECK(cudaEventRecord(admission_events_[events][kBegun], encoding));
      host_.encode(*workspace_, queued.pixels, static_cast<int>(queued.lines.size()));
      // The slots' last step, which may still read them, first.
      TROCR_CUDA_CHECK(cudaStreamWaitEvent(encoding, stepped_));
      workspace_->states.prepare_slots(queued.lines, key_values);
      TROCR_CUDA_CHECK(cudaEventRecord(admission_events_[events][kEncoded], encoding));
      for (int line : queued.lines) key_values_[line] = key_values;
      if (host_.profile && !key_values) admitted_without_key_values_ += static_cast<int>(queued.lines.size());
      pending_.push_back({std::move(queued.lines), events});
      uploads_outstanding_ = true;
    }
    queued_.clear();
  }
  // Starts the admissions whose encoder pass is done, oldest first, and with no line stepping
  // the oldest one whatever its state (the step then waits for it on the GPU).
  void start_encoded_admissions() {
    while (!pending_.empty()) {
      const cudaError_t state = cudaEventQuery(admission_events_[pending_.front().events][kEncoded]);
      if (state == cudaErrorNotReady) {
        if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();  // not an error
        if (!launchable_lines().empty()) return;
        ++admissions_waited_for_;
      } else {
        TROCR_CUDA_CHECK(state);
      }
      start_admission();
    }
  }
  // The oldest pending admission's lines start: after its encoder pass, on the GPU.
  void start_admission() {
    const Admission admission = std::move(pending_.front());
    pending_.pop_front();
    cudaEvent_t* events = admission_events_[admission.events];
    TROCR_CUDA_CHECK(cudaStreamWaitEvent(host_.gemm.stream(), events[kEncoded]));
    search().start_lines(admission.lines, options_);
    for (int line : admission.lines) steps_[line] = 0;
    if (host_.profile) {
      add_elapsed(events[kBegun], events[kEncoded], admission_ms_);
      ++admissions_;
      admitted_ += static_cast<int>(admission.lines.size());
    }
  }
  void mark(int buffer, Mark which) {
    if (host_.profile) TROCR_CUDA_CHECK(cudaEventRecord(marks_[buffer][which], host_.gemm.stream()));
  }
  static void add_elapsed(cudaEvent_t begin, cudaEvent_t end, double& total) {
    TROCR_CUDA_CHECK(cudaEventSynchronize(end));
    float ms = 0.0f;
    TROCR_CUDA_CHECK(cudaEventElapsedTime(&ms, begin, end));
    total += ms;
  }

  const LineBatchHost<T> host_;
  const SearchOptions options_;
  std::unique_ptr<Stream> encoding_stream_;  // before what enqueues on it
  std::unique_ptr<Gemm> encoding_gemm_;
  std::unique_ptr<Workspace<T>> workspace_;
  bool folded_ = false;  // steps may attend over the states kept by slot
  std::vector<int> steps_;  // by line: steps taken, kFree or kEncoding
  std::vector<bool> key_values_;  // by line: its per-layer K/V are in its slot
  std::vector<int> free_;   // descending: back() is the lowest
  std::vector<Queued> queued_;
  std::deque<Admission> pending_;  // encoding, oldest first
  cudaEvent_t admission_events_[kMaxPending][2] = {};
  cudaEvent_t key_values_done_ = nullptr;
  int64_t admissions_issued_ = 0;
  bool uploads_outstanding_ = false;  // an admission's pixels may still be read
  std::vector<int> row_lines_;  // the lines of shape_'s rows
  StepShape shape_{};
  // By copy buffer: the lines a launched step ran, with their step counts after it.
  std::vector<std::pair<int, int>> launched_[2];
  int64_t launches_ = 0;
  int unread_ = -1;  // the buffer of the launched step whose states are not read yet
  cudaEvent_t stepped_ = nullptr;  // after the last launched step
  cudaEvent_t marks_[2][2] = {};
  int steps_taken_ = 0, admissions_ = 0, admitted_ = 0, admissions_waited_for_ = 0, admitted_without_key_values_ = 0;
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

#pragma once
// The TrOCR forward passes on the GPU: the encoder for a batch of images, and the decoder as
// a StepModel whose step can also run as a captured CUDA graph (position and tokens read from
// device memory), for the device-side greedy loop.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cuda/cuda_weights.h"
#include "cuda/gemm.h"
#include "decoding/search.h"
#include "decoding/step_model.h"
#include "engine/backend.h"
#include "trocr/config.h"

namespace trocr::cuda {

// The batch shrinking of the device-side searches: the images of `active` whose done[image] is
// still 0, and whether to shrink to them. Each row count is a new graph, so the batch shrinks
// only once a quarter of its images are done.
inline std::vector<int> unfinished_images(const std::vector<int>& active, const int* done) {
  std::vector<int> unfinished;
  for (int image : active) {
    if (done[image] == 0) unfinished.push_back(image);
  }
  return unfinished;
}
inline bool worth_shrinking(size_t unfinished, size_t active) { return unfinished * 4 <= active * 3; }

template <typename T>
class CudaModel : public StepModel {
 public:
  CudaModel(const DeviceWeights<T>& weights, const ModelConfig& config, cudaStream_t stream,
            const BackendOptions& options = {});

  // The encoder works through a batch in chunks of this many images (the chunk bounds the
  // workspace of its attention).
  static constexpr int kEncoderChunk = 32;
  // pixels: device [count, 3, H, W]. Writes last_hidden_state [count * S, hidden] into out.
  void encode(const float* pixels, int count, T* out);
  // Cross-attention K/V of every layer for `images` encoder outputs (device, [images * S, hidden]),
  // which must stay in place while decoding. With greedy_only and the folded cross-attention,
  // greedy() reads the encoder output directly and the K/V are not computed.
  void set_encoder_output(const T* encoder_hidden, int images, bool greedy_only = false);

  int vocab_size() const override { return config_.decoder.vocab_size; }
  int max_length() const override { return config_.decoder.max_position_embeddings; }
  // The longest sequence the next begin() must hold (sizes the KV caches); at most max_length().
  void set_cache_length(int length);
  void begin(const std::vector<int>& slot_sources) override;
  void step(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
            float* logits) override;
  void reorder(const std::vector<int>& slots, const std::vector<int>& sources, int position) override;
  bool step_top_k(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
                  const std::vector<std::vector<int>>& banned, const std::vector<float>& running_scores,
                  int k, std::vector<float>* values, std::vector<int>* token_ids) override;

  // Device-side greedy decoding of one row per image (after set_encoder_output).
  struct GreedyResult {
    std::vector<std::vector<int>> ids;
    std::vector<float> sum_log_probability, sum_probability, min_probability;
  };
  GreedyResult greedy(int images, int max_length, int min_length, int no_repeat_ngram_size,
                      int decoder_start, int eos, int pad);
  // Device-side beam search (after set_encoder_output): HF's bookkeeping runs on the GPU as part
  // of each replayed step, and only the finished sequences are copied back. Needs num_beams <=
  // kMaxBeams (and 2 * num_beams <= vocabulary); returns one list per image, as
  // trocr::beam_search does.
  bool beam_search_fits(const SearchOptions& options) const;
  std::vector<std::vector<Hypothesis>> beam_search(int images, const SearchOptions& options, int pad);

  cudaStream_t stream() const { return stream_; }

 private:
  // Runs the decoder for `rows` rows whose tokens, cache slots and images are already in
  // tokens_, row_slots_ and row_images_, at the position in position_; logits into logits_.
  void forward(int rows);
  void reserve_rows(int rows);
  // Uploads one step's rows (tokens, cache slots, their images) and position.
  void prepare_rows(const std::vector<int>& slots, const std::vector<int>& tokens, int position);
  // Row r reads cache slot slots[r] and image images[r]: uploads both and the rows' groups
  // for cross_attention (groups_).
  void upload_rows(const std::vector<int>& slots, const std::vector<int>& images);
  // y = activation(x W^T + b): small_linear for a few rows, cuBLASLt otherwise.
  void linear(const T* x, int rows, const DeviceLinear<T>& layer, T* y, std::optional<Activation> activation = {},
              const T* bias_override = nullptr);
  // Layer l's cross-attention for one row per image over the encoder states (the folded path):
  // step_query_ -> step_context_, without the value projection's bias (see DeviceDecoderLayer).
  void folded_cross_attention(int layer, int rows);
  void reserve_folded(int rows);
  // folded_cross_attention's middle where folded_attention does not apply: step_query_'s folded
  // queries against the encoder states by two batched GEMMs around a softmax, into folded_mix_.
  void folded_attention_by_gemms(int rows);

  const DeviceWeights<T>& weights_;
  const ModelConfig& config_;
  cudaStream_t stream_;
  BackendOptions options_;
  Gemm gemm_;
  int images_ = 0, slots_ = 0, row_capacity_ = 0;
  int cache_length_ = 0;  // positions per slot in the KV caches
  // Encoder workspace.
  DeviceBuffer<T> patches_, patch_embeddings_, normed_, qkv_, q_, k_, v_, scores_, probabilities_,
      context_, heads_out_, projected_, intermediate_;
  // Decoder state.
  DeviceBuffer<T> cross_kv_, projected_encoder_;
  const T* encoder_states_ = nullptr;  // what cross-attention reads: the (projected) encoder output
  bool cross_kv_ready_ = false;
  bool folded_step_ = false;  // forward() uses folded_cross_attention
  DeviceBuffer<T> folded_queries_, folded_scores_, folded_probabilities_, folded_mix_;
  DeviceBuffer<float> folded_partials_;  // folded_attention's key splits
  std::vector<DeviceBuffer<T>> key_cache_, value_cache_;
  DeviceBuffer<void*> cache_pointers_;  // every layer's key and value cache, for permute_beam_caches
  DeviceBuffer<int> tokens_, row_slots_, row_images_, position_, cache_parents_;
  // The step's rows grouped by image for cross_attention (cross_attention_groups).
  DeviceBuffer<int> group_starts_;
  int groups_ = 0;
  DeviceBuffer<T> hidden_, hidden_alternate_, step_qkv_, step_context_, step_projected_, step_query_, step_ffn_;
  DeviceBuffer<float> logits_, attention_scratch_;
  DeviceBuffer<int> beam_banned_, beam_tokens_;
  DeviceBuffer<float> beam_running_, beam_values_;
  // Device-side beam state (BeamMergeParams says what each holds).
  DeviceBuffer<int> beam_history_, beam_history_scratch_, finished_ids_, finished_ids_scratch_, finished_lengths_,
      finished_done_, improvement_possible_, beam_flags_;
  DeviceBuffer<float> finished_scores_, finished_sums_, length_denominators_;
  // permute_beam_caches over cache_parents_ for `count` images (images[i * beams] names the
  // i-th; null: all), moving `positions` positions, or *position_ + 1 when positions is 0.
  void permute_caches(int beams, const int* images, int count, const int* stop, int positions);
  std::vector<int> slot_sources_;
  // Device-side greedy state.
  DeviceBuffer<int> greedy_history_, greedy_finished_;
  DeviceBuffer<float> greedy_sum_log_, greedy_sum_probability_, greedy_min_probability_;
  // Decode steps run as CUDA graphs, captured on first use. A graph bakes in buffer addresses
  // and launch shapes, so it is keyed by both (the step's own settings included).
  using GraphKey = std::pair<std::vector<const void*>, std::vector<int>>;
  std::map<GraphKey, cudaGraphExec_t> graphs_;
  // Launches the graph of `key`, capturing `enqueue` (launches on stream_) into it first if needed.
  void replay(GraphKey key, const std::function<void()>& enqueue);
  // The addresses every decode step reads or writes, after `extra` (a step's own).
  std::vector<const void*> step_addresses(std::initializer_list<const void*> extra) const;
  int max_keys() const;

 public:
  ~CudaModel() override;
};

}  // namespace trocr::cuda

// CudaModel's device-side greedy loop: one decode step as a replayed CUDA graph, token choice
// on the device, the batch shrinking to the unfinished rows, only the final ids copied back.
#include <algorithm>

#include "cuda/cuda_model.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"

namespace trocr::cuda {

template <typename T>
typename CudaModel<T>::GreedyResult CudaModel<T>::greedy(int images, int max_length, int min_length,
                                                         int no_repeat_ngram_size, int decoder_start,
                                                         int eos, int pad) {
  std::vector<int> identity(images);
  for (int i = 0; i < images; ++i) identity[i] = i;
  begin(identity);
  upload_rows(identity, identity);  // row i decodes image i in cache slot i
  std::vector<int> history(size_t(images) * max_length, pad);
  for (int i = 0; i < images; ++i) history[size_t(i) * max_length] = decoder_start;
  const std::vector<float> zeros(images, 0.0f), ones(images, 1.0f);
  greedy_history_.assign(history, stream_);
  greedy_finished_.assign(std::vector<int>(images, 0), stream_);
  greedy_sum_log_.assign(zeros, stream_);
  greedy_sum_probability_.assign(zeros, stream_);
  greedy_min_probability_.assign(ones, stream_);
  position_.assign({0}, stream_);
  GreedyParams params{images, row_images_.data(), vocab_size(), max_length, min_length, eos, pad,
                      no_repeat_ngram_size, position_.data(), greedy_history_.data(), greedy_finished_.data(),
                      greedy_sum_log_.data(), greedy_sum_probability_.data(), greedy_min_probability_.data()};
  // One decode step as a CUDA graph: its ~150 launches replay with one call.
  folded_step_ = options_.folded_cross_attention;
  if (folded_step_) reserve_folded(images);
  const auto addresses = step_addresses({greedy_history_.data(), greedy_finished_.data(), greedy_sum_log_.data(),
                                         greedy_sum_probability_.data(), greedy_min_probability_.data(),
                                         encoder_states_, folded_queries_.data(), folded_scores_.data(),
                                         folded_probabilities_.data(), folded_mix_.data()});
  const auto enqueue_step = [&] {
    gather_last_tokens(greedy_history_.data(), row_images_.data(), params.rows, max_length, position_.data(),
                       tokens_.data(), stream_);
    forward(params.rows);
    greedy_select(params, logits_.data(), stream_);
    advance_position(position_.data(), stream_);
  };
  // Rows are images; when a quarter of them have finished, the batch shrinks to the rest (a new
  // graph, for the new row count). The folded cross-attention needs every image in its row.
  std::vector<int> active = identity, done(images);
  constexpr int kCheckEvery = 4;
  for (int step = 0; step + 1 < max_length; ++step) {
    const std::vector<int> settings = {0, params.rows, max_length, min_length, no_repeat_ngram_size, eos, pad,
                                       cache_length_, groups_, folded_step_ ? 1 : 0};
    replay({addresses, settings}, enqueue_step);
    if ((step + 1) % kCheckEvery != 0) continue;
    greedy_finished_.copy_to(done, stream_);
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<int> unfinished = unfinished_images(active, done.data());
    if (unfinished.empty()) break;
    if (folded_step_ || !worth_shrinking(unfinished.size(), active.size())) continue;
    active = std::move(unfinished);
    params.rows = static_cast<int>(active.size());
    upload_rows(active, active);
  }
  folded_step_ = false;
  GreedyResult result;
  result.sum_log_probability.resize(images);
  result.sum_probability.resize(images);
  result.min_probability.resize(images);
  greedy_history_.copy_to(history, stream_);
  greedy_sum_log_.copy_to(result.sum_log_probability, stream_);
  greedy_sum_probability_.copy_to(result.sum_probability, stream_);
  greedy_min_probability_.copy_to(result.min_probability, stream_);
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (int i = 0; i < images; ++i) {
    std::vector<int> ids = {decoder_start};
    for (int t = 1; t < max_length; ++t) {
      ids.push_back(history[size_t(i) * max_length + t]);
      if (ids.back() == eos) break;
    }
    result.ids.push_back(std::move(ids));
  }
  return result;
}

template CudaModel<float>::GreedyResult CudaModel<float>::greedy(int, int, int, int, int, int, int);
template CudaModel<__half>::GreedyResult CudaModel<__half>::greedy(int, int, int, int, int, int, int);
template CudaModel<__nv_bfloat16>::GreedyResult CudaModel<__nv_bfloat16>::greedy(int, int, int, int, int, int, int);

}  // namespace trocr::cuda

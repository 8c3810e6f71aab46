#include "cuda/greedy_search.h"

#include <algorithm>

#include "common/check.h"
#include "cuda/dtype_traits.h"
#include "cuda/kernels/kernels.h"
#include "cuda/search_rows.h"

namespace trocr::cuda {

// Everything a captured greedy step depends on (step_graphs.h).
template <typename T>
struct DeviceGreedySearch<T>::Spec {
  DeviceGreedySearch<T>* search;
  StepShape shape;
  int max_length, min_length, no_repeat_ngram_size, eos, pad;
  int unused = 0;  // an even count of ints: no padding
};

template <typename T>
DeviceGreedySearch<T>::DeviceGreedySearch(DecoderStep<T>& step, EncoderStates<T>& states, StepGraphs& graphs,
                                          const ModelConfig& config, int max_images, int max_length)
    : step_(step), states_(states), graphs_(graphs), config_(config), max_images_(max_images),
      max_length_(max_length), history_(size_t(max_images) * max_length), finished_(max_images),
      sum_log_probability_(max_images), sum_probability_(max_images), min_probability_(max_images) {}

template <typename T>
void DeviceGreedySearch<T>::enqueue(const Spec& spec) {
  DeviceGreedySearch<T>& self = *spec.search;
  DecoderStep<T>& step = self.step_;
  cudaStream_t stream = step.stream();
  const GreedyParams params{spec.shape.rows, step.row_images(), self.config_.decoder.vocab_size, spec.max_length,
                            spec.min_length, spec.eos, spec.pad, spec.no_repeat_ngram_size, step.position(),
                            self.history_.data(), self.finished_.data(), self.sum_log_probability_.data(),
                            self.sum_probability_.data(), self.min_probability_.data()};
  gather_last_tokens(self.history_.data(), step.row_images(), spec.shape.rows, spec.max_length, step.position(),
                     step.tokens(), stream);
  step.forward(spec.shape);
  greedy_select(params, step.logits(), stream);
  advance_position(step.position(), stream);
}

template <typename T>
Hypotheses DeviceGreedySearch<T>::search(int images, const SearchOptions& options) {
  if (images > max_images_ || options.max_length > max_length_) {
    fail("CUDA greedy search: {} images of {} tokens, planned for {} of {}", images, options.max_length, max_images_,
         max_length_);
  }
  const int max_length = options.max_length, pad = config_.tokens.pad;
  cudaStream_t stream = step_.stream();
  const CrossAttentionKernel cross = step_.choose_cross_attention(images, /*greedy=*/true);
  states_.prepare(images, cross != CrossAttentionKernel::OverEncoderStates);
  std::vector<int> history(size_t(images) * max_length, pad);
  for (int i = 0; i < images; ++i) history[size_t(i) * max_length] = options.decoder_start;
  history_.assign(history, stream);
  finished_.assign(std::vector<int>(images, 0), stream);
  sum_log_probability_.assign(std::vector<float>(images, 0.0f), stream);
  sum_probability_.assign(std::vector<float>(images, 0.0f), stream);
  min_probability_.assign(std::vector<float>(images, 1.0f), stream);
  TROCR_CUDA_CHECK(cudaMemsetAsync(step_.position(), 0, sizeof(int), stream));
  // Row i decodes image i in cache slot i; when a quarter of the rows have finished, the batch
  // shrinks to the rest (a new graph, for the new row count). The attention over the encoder
  // states reads every image in its row, so it keeps the full batch.
  std::vector<int> active(images);
  for (int i = 0; i < images; ++i) active[i] = i;
  Spec spec{this, step_.set_rows(active, active, max_length, cross), max_length, options.min_length,
            options.no_repeat_ngram_size, options.eos, pad};
  std::vector<int> done(images);
  constexpr int kCheckEvery = 4;
  for (int position = 0; position + 1 < max_length; ++position) {
    graphs_.replay(spec, &DeviceGreedySearch<T>::enqueue);
    if ((position + 1) % kCheckEvery != 0) continue;
    finished_.copy_to(done, stream);
    TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<int> unfinished = unfinished_images(active, done.data());
    if (unfinished.empty()) break;
    if (cross == CrossAttentionKernel::OverEncoderStates || !worth_shrinking(unfinished.size(), active.size())) continue;
    active = std::move(unfinished);
    spec.shape = step_.set_rows(active, active, max_length, cross);
  }
  std::vector<float> sum_log(images), sum_probability(images), min_probability(images);
  history_.copy_to(history, stream);
  sum_log_probability_.copy_to(sum_log, stream);
  sum_probability_.copy_to(sum_probability, stream);
  min_probability_.copy_to(min_probability, stream);
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
  Hypotheses results(images);
  for (int i = 0; i < images; ++i) {
    std::vector<int> ids = {options.decoder_start};
    for (int t = 1; t < max_length; ++t) {
      ids.push_back(history[size_t(i) * max_length + t]);
      if (ids.back() == options.eos) break;
    }
    results[i].push_back(greedy_hypothesis(std::move(ids), sum_log[i], sum_probability[i], min_probability[i]));
  }
  return results;
}

template class DeviceGreedySearch<float>;
template class DeviceGreedySearch<__half>;
template class DeviceGreedySearch<__nv_bfloat16>;

}  // namespace trocr::cuda

#include "cuda/host_driven_decoder.h"

#include <algorithm>

#include "common/check.h"
#include "cuda/dtype_traits.h"

namespace trocr::cuda {

template <typename T>
HostDrivenDecoder<T>::HostDrivenDecoder(DecoderStep<T>& step, EncoderStates<T>& states, KvCaches<T>& caches,
                                        const ModelConfig& config)
    : step_(step), states_(states), caches_(caches), config_(config), parents_(caches.slots()) {}

template <typename T>
void HostDrivenDecoder<T>::begin(const std::vector<int>& slot_sources) {
  if (static_cast<int>(slot_sources.size()) > caches_.slots()) {
    fail("CUDA decoder: {} slots, planned for {}", slot_sources.size(), caches_.slots());
  }
  int images = 0;
  for (int source : slot_sources) {
    if (source < 0 || source >= states_.max_images()) fail("CUDA decoder: a slot reads image {}", source);
    images = std::max(images, source + 1);
  }
  states_.prepare(images, /*key_values=*/true);
  slot_sources_ = slot_sources;
}

template <typename T>
void HostDrivenDecoder<T>::step(const std::vector<int>& slots, const std::vector<int>& tokens, int position,
                                float* logits) {
  const int rows = static_cast<int>(slots.size());
  std::vector<int> images(rows);
  for (int i = 0; i < rows; ++i) images[i] = slot_sources_.at(slots[i]);
  cudaStream_t stream = step_.stream();
  const StepShape shape =
      step_.set_rows(slots, images, position + 1, step_.choose_cross_attention(rows, /*greedy=*/false));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(step_.tokens(), tokens.data(), rows * sizeof(int), cudaMemcpyHostToDevice, stream));
  TROCR_CUDA_CHECK(cudaMemcpyAsync(step_.position(), &position, sizeof(int), cudaMemcpyHostToDevice, stream));
  step_.forward(shape);
  TROCR_CUDA_CHECK(cudaMemcpyAsync(logits, step_.logits(), size_t(rows) * vocab_size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream));
  TROCR_CUDA_CHECK(cudaStreamSynchronize(stream));
}

template <typename T>
void HostDrivenDecoder<T>::reorder(const std::vector<int>& slots, const std::vector<int>& sources, int position) {
  if (slots.empty() || position == 0) return;
  // Slots come in equal runs per image (beam search's layout), and caches move within a run.
  const int count = static_cast<int>(slot_sources_.size());
  int beams = 1;
  while (beams < count && slot_sources_[beams] == slot_sources_[0]) ++beams;
  std::vector<int> parents(count);
  for (int slot = 0; slot < count; ++slot) {
    parents[slot] = slot % beams;
    if (count % beams != 0 || slot_sources_[slot] != slot_sources_[slot - parents[slot]]) {
      fail("CUDA decoder: beam reordering needs {} slots per image, image-major", beams);
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] / beams != sources[i] / beams) fail("CUDA decoder: reorder moves a cache between images");
    parents[slots[i]] = sources[i] % beams;
  }
  parents_.assign(parents, step_.stream());
  caches_.permute({beams, parents_.data(), nullptr, count / beams, {}, position, position, nullptr}, step_.stream());
}

template class HostDrivenDecoder<float>;
template class HostDrivenDecoder<__half>;
template class HostDrivenDecoder<__nv_bfloat16>;

}  // namespace trocr::cuda

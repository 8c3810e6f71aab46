#include "cuda/kv_caches.h"

#include "cuda/kernels/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace trocr::cuda {

template <typename T>
KvCaches<T>::KvCaches(const DecoderConfig& config, int slots, int positions)
    : layers_(config.num_layers), width_(config.d_model), slots_(slots), positions_(positions) {
  caches_.resize(2 * size_t(layers_) * layer_elements());
  std::vector<void*> table;
  for (int l = 0; l < layers_; ++l) {
    table.push_back(keys(l));
    table.push_back(values(l));
  }
  table_.upload(table);
  // The table's pageable source goes when this returns. Not a device-wide sync: another engine's
  // thread may be capturing a graph on this GPU, and a device sync would break its capture.
  TROCR_CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

template <typename T>
void KvCaches<T>::permute(const Permutation& permutation, cudaStream_t stream) {
  PermuteCachesParams params{permutation.beams, permutation.parents, permutation.images};
  params.position = permutation.position;
  params.positions = permutation.positions;
  params.slot_bytes = int64_t(positions_) * width_ * sizeof(T);
  params.position_bytes = int64_t(width_) * sizeof(T);
  params.stop = permutation.stop;
  permute_beam_caches(params, table(), 2 * layers_, permutation.image_count, permutation.max_positions, stream);
}

template class KvCaches<float>;
template class KvCaches<__half>;
template class KvCaches<__nv_bfloat16>;

}  // namespace trocr::cuda

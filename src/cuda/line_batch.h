#pragma once
// Lines in flight on the GPU (engine/backend.h's LineBatch), greedy or beam search: lines join
// between decoding steps at their own positions and leave when they end, in a workspace of
// their own, whose encoder runs on a stream of its own beside the steps. A line batch borrows
// its backend's model, stream and pixel upload path (LineBatchHost): one caller at a time, as
// for generate, and the backend outlives it.
#include <functional>
#include <memory>

#include "cuda/workspace.h"
#include "engine/backend.h"

namespace trocr::cuda {

template <typename T>
struct LineBatchHost {
  const DeviceWeights<T>& weights;
  const ModelConfig& config;
  Gemm& gemm;  // its stream is the backend's
  int device;
  bool profile;  // CUDA events around admissions and steps, in profile_report()
  // Uploads `count` images' pixels and encodes them into the workspace's encoder output.
  std::function<void(Workspace<T>&, const float* pixels, int count)> encode;
  // Makes the upload buffers hold a chunk of this many images.
  std::function<void(int chunk)> grow_pixel_buffers;
  // Waits until every upload enqueued so far has read its host pixels.
  std::function<void()> wait_for_uploads;
  // Waits for the backend's own streams (never the whole device: another engine may be capturing).
  std::function<void()> synchronize;
};

// Lines with one returned sequence, greedy or with beam search's bookkeeping on the device (the
// backend checks the settings).
template <typename T>
std::unique_ptr<LineBatch> open_line_batch(const LineBatchHost<T>& host, const SearchOptions& options, int capacity);

}  // namespace trocr::cuda

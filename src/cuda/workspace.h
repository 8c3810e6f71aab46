#pragma once
// Everything the CUDA engine computes in, planned up front from (images per batch, beams,
// tokens per sequence) and allocated once: the encoder's workspace, the encoder states and
// cross-attention K/V, the KV caches, the decoder step's buffers, each search's state and the
// step graphs. Nothing grows while a batch runs; a batch that needs more than the plan gets a
// new workspace before it starts (CudaBackend), and with it new graphs.
#include <algorithm>

#include "cuda/beam_search.h"
#include "cuda/decoder_step.h"
#include "cuda/encoder.h"
#include "cuda/encoder_states.h"
#include "cuda/greedy_search.h"
#include "cuda/host_driven_decoder.h"
#include "cuda/kv_caches.h"
#include "cuda/step_graphs.h"

namespace trocr::cuda {

struct DecodePlan {
  int images = 1;
  int beams = 1;
  int max_length = 2;  // tokens per sequence, start token included

  bool covers(const DecodePlan& other) const {
    return images >= other.images && beams >= other.beams && max_length >= other.max_length;
  }
  DecodePlan joined(const DecodePlan& other) const {
    return {std::max(images, other.images), std::max(beams, other.beams), std::max(max_length, other.max_length)};
  }
};

template <typename T>
struct Workspace {
  Workspace(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm, const DecodePlan& plan)
      : Workspace(weights, config, gemm, gemm, plan) {}
  // encoding_gemm: the encoder's and the encoder states' products and kernels; gemm: the
  // decoder's. A line batch gives them two streams, so that admissions run beside the steps.
  Workspace(const DeviceWeights<T>& weights, const ModelConfig& config, Gemm& gemm, Gemm& encoding_gemm,
            const DecodePlan& plan)
      : plan(plan),
        encoder(weights, config, encoding_gemm, plan.images),
        states(weights, config, encoding_gemm, plan.images),
        caches(config.decoder, plan.images * plan.beams, plan.max_length),
        step(weights, config, gemm, states, caches, plan.images * plan.beams),
        graphs(gemm.stream()),
        greedy(step, states, graphs, config, plan.images, plan.max_length),
        beams(step, states, caches, graphs, config, plan.images, plan.beams, plan.max_length),
        host_driven(step, states, caches, config) {}

  const DecodePlan plan;
  CudaEncoder<T> encoder;
  EncoderStates<T> states;
  KvCaches<T> caches;
  DecoderStep<T> step;
  StepGraphs graphs;
  DeviceGreedySearch<T> greedy;
  DeviceBeamSearch<T> beams;
  HostDrivenDecoder<T> host_driven;
};

}  // namespace trocr::cuda

#include "cpu/onednn.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "common/check.h"
#include "cpu/vector_math.h"

namespace trocr::cpu {
namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::algorithm activation_algorithm(Activation activation) {
  switch (activation) {
    case Activation::Gelu: return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::GeluTanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case Activation::Relu: return dnnl::algorithm::eltwise_relu;
  }
  fail("unknown activation");
}

std::vector<int64_t> cache_key(const MatmulShape& shape) {
  std::vector<int64_t> key = {shape.outer, shape.inner, shape.m, shape.k, shape.n, shape.bias,
                              int64_t(shape.post.kind), int64_t(shape.post.activation), shape.bf16};
  for (const auto* strides : {&shape.a_strides, &shape.b_strides, &shape.c_strides}) {
    key.insert(key.end(), strides->begin(), strides->end());
  }
  int32_t scale_bits;
  static_assert(sizeof(scale_bits) == sizeof(shape.scale));
  std::memcpy(&scale_bits, &shape.scale, sizeof(scale_bits));
  key.push_back(scale_bits);
  return key;
}

struct Prepared {
  dnnl::matmul primitive;
  dnnl::memory::desc a, b, bias, c, scratchpad;
};

Prepared prepare(const MatmulShape& shape) {
  using dims = dnnl::memory::dims;
  const auto f32 = dnnl::memory::data_type::f32;
  const auto inputs = shape.bf16 ? dnnl::memory::data_type::bf16 : f32;
  const dims batch = {shape.outer, shape.inner};
  const auto with = [&](int64_t rows, int64_t columns) { return dims{batch[0], batch[1], rows, columns}; };
  const auto strides = [](const std::array<int64_t, 4>& s) { return dims(s.begin(), s.end()); };
  Prepared prepared;
  prepared.a = dnnl::memory::desc(with(shape.m, shape.k), inputs, strides(shape.a_strides));
  prepared.b = dnnl::memory::desc(with(shape.k, shape.n), inputs, strides(shape.b_strides));
  prepared.c = dnnl::memory::desc(with(shape.m, shape.n), f32, strides(shape.c_strides));
  if (shape.bias) prepared.bias = dnnl::memory::desc({1, 1, 1, shape.n}, f32, dnnl::memory::format_tag::abcd);
  dnnl::primitive_attr attributes;
  // Our scratchpad, one per calling thread: the library's own is not safe when one primitive
  // runs on several threads at once (the encoder embeds images in parallel).
  attributes.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (shape.scale != 1.0f) attributes.set_output_scales(0, {shape.scale});
  dnnl::post_ops post_ops;
  if (shape.post.kind == PostOp::Activation) {
    post_ops.append_eltwise(1.0f, activation_algorithm(shape.post.activation), 0.0f, 0.0f);
  } else if (shape.post.kind == PostOp::AddToOutput) {
    post_ops.append_sum(1.0f);
  }
  attributes.set_post_ops(post_ops);
  const dnnl::matmul::desc description = shape.bias
      ? dnnl::matmul::desc(prepared.a, prepared.b, prepared.bias, prepared.c)
      : dnnl::matmul::desc(prepared.a, prepared.b, prepared.c);
  const dnnl::matmul::primitive_desc primitive_description(description, attributes, cpu_engine());
  prepared.primitive = dnnl::matmul(primitive_description);
  prepared.scratchpad = primitive_description.scratchpad_desc();
  return prepared;
}

const Prepared& prepared_for(const MatmulShape& shape) {
  static std::mutex mutex;
  static std::map<std::vector<int64_t>, Prepared> cache;
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = cache_key(shape);
  auto found = cache.find(key);
  if (found == cache.end()) found = cache.emplace(key, prepare(shape)).first;
  return found->second;  // std::map never moves its elements
}

void execute(const MatmulShape& shape, const void* a, const void* b, const float* bias, float* c) {
  const Prepared& prepared = prepared_for(shape);
  dnnl::engine& engine = cpu_engine();
  thread_local dnnl::stream stream(engine);
  std::unordered_map<int, dnnl::memory> arguments = {
      {DNNL_ARG_SRC, dnnl::memory(prepared.a, engine, const_cast<void*>(a))},
      {DNNL_ARG_WEIGHTS, dnnl::memory(prepared.b, engine, const_cast<void*>(b))},
      {DNNL_ARG_DST, dnnl::memory(prepared.c, engine, c)}};
  if (shape.bias) arguments.emplace(DNNL_ARG_BIAS, dnnl::memory(prepared.bias, engine, const_cast<float*>(bias)));
  thread_local std::vector<uint8_t> scratchpad;
  scratchpad.resize(std::max<size_t>(scratchpad.size(), prepared.scratchpad.get_size()));
  arguments.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(prepared.scratchpad, engine, scratchpad.data()));
  prepared.primitive.execute(stream, arguments);
  stream.wait();
}

}  // namespace

MatmulShape linear_shape(int64_t m, int64_t k, int64_t n, bool bias, LinearPostOp post) {
  MatmulShape shape;
  shape.m = m;
  shape.k = k;
  shape.n = n;
  shape.a_strides = {m * k, m * k, k, 1};
  shape.b_strides = {k * n, k * n, 1, k};  // W [n, k] read as W^T [k, n]
  shape.c_strides = {m * n, m * n, n, 1};
  shape.bias = bias;
  shape.post = post;
  return shape;
}

void run_matmul(const MatmulShape& shape, const float* a, const float* b, const float* bias, float* c) {
  execute(shape, a, b, bias, c);
}

void run_bf16_matmul(const MatmulShape& shape, const float* a, const uint16_t* b, const float* bias, float* c) {
  const int64_t count = shape.outer * shape.inner * shape.m * shape.k;
  thread_local std::vector<uint16_t> rounded;
  rounded.resize(std::max<size_t>(rounded.size(), size_t(count)));
  round_to_bf16(a, rounded.data(), count);
  execute(shape, rounded.data(), b, bias, c);
}

bool bf16_matmul_supported() {
  // oneDNN's ISA values are bit sets: a newer ISA holds every bit of the older ones.
  const int isa = static_cast<int>(dnnl::get_effective_cpu_isa());
  const int needed = static_cast<int>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & needed) == needed;
}

}  // namespace trocr::cpu

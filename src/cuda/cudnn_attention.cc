#include "cuda/cudnn_attention.h"

#include <array>
#include <vector>

#include "common/check.h"
#include "cuda/cudnn_backend.h"

namespace trocr::cuda {
namespace {

// The SDPA forward operation came with cuDNN 9.13.
constexpr size_t kFirstVersionWithAttention = 91300;

enum Uid : int64_t { kQueries = 1, kKeys, kValues, kOutput, kScale };

cudnnHandle_t as_handle(void* handle) { return static_cast<cudnnHandle_t>(handle); }

}  // namespace

struct CudnnAttention::Plan {
  std::vector<std::unique_ptr<CudnnDescriptor>> parts;  // what the plan was built from, kept with it
  std::unique_ptr<CudnnDescriptor> plan;
  DeviceBuffer<char> workspace;  // the plan's own: a captured launch keeps its address
  int64_t engine = -1;
  // The last launch's variant pack, reused while the buffers stay (the encoder's always do).
  std::unique_ptr<CudnnDescriptor> pack;
  const void* pack_qkv = nullptr;
  void* pack_out = nullptr;
};

bool CudnnAttention::available(std::string* why) {
  // Asked by every kernel choice (current_choice_context): decided once.
  static const std::string why_not = [] {
    const CudnnLibrary& library = cudnn();
    if (library.loaded && library.get_version() < kFirstVersionWithAttention) {
      return fmt::format("cuDNN {} has no fused attention operation (9.13 or later has)", library.get_version());
    }
    return library.why_not;
  }();
  if (why != nullptr) *why = why_not;
  return why_not.empty();
}

CudnnAttention::CudnnAttention(DType dtype, int sequence, int heads, int head_dim, float scale, int max_batch)
    : dtype_(dtype), sequence_(sequence), heads_(heads), head_dim_(head_dim), max_batch_(max_batch), scale_(scale) {
  std::string why;
  if (!available(&why)) fail("cuDNN attention: {}", why);
  if (dtype != DType::F16 && dtype != DType::BF16) fail("cuDNN attention: {} is not fp16 or bf16", dtype_name(dtype));
  cudnnHandle_t handle = nullptr;
  check_cudnn(cudnn().create(&handle), "creating a handle");
  handle_ = handle;
  prepare(max_batch);  // refuses here, not at the first image, where cuDNN has no engine for the shape
}

CudnnAttention::~CudnnAttention() {
  plans_.clear();
  if (handle_ != nullptr) cudnn().destroy(as_handle(handle_));
}

CudnnAttention::Plan CudnnAttention::build(int batch) {
  Plan plan;
  auto part = [&](cudnnBackendDescriptorType_t type) -> CudnnDescriptor& {
    plan.parts.push_back(std::make_unique<CudnnDescriptor>(type));
    return *plan.parts.back();
  };
  const cudnnDataType_t type = dtype_ == DType::F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
  const int64_t width = int64_t(heads_) * head_dim_;
  // [image, head, token, dim] views of the QKV rows (three heads' widths a token) and of out's.
  auto tensor = [&](Uid uid, int64_t token_stride, cudnnDataType_t data_type, bool by_value) -> CudnnDescriptor& {
    CudnnDescriptor& tensor = part(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const std::array<int64_t, 4> dims =
        by_value ? std::array<int64_t, 4>{1, 1, 1, 1} : std::array<int64_t, 4>{batch, heads_, sequence_, head_dim_};
    const std::array<int64_t, 4> strides = by_value ? std::array<int64_t, 4>{1, 1, 1, 1}
                                                    : std::array<int64_t, 4>{sequence_ * token_stride, head_dim_,
                                                                             token_stride, 1};
    const int64_t id = uid, alignment = by_value ? 4 : 16;
    tensor.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &data_type);
    tensor.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims.data(), 4);
    tensor.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides.data(), 4);
    tensor.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &id);
    tensor.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment);
    if (by_value) {
      const bool yes = true;
      tensor.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, &yes);
    }
    check_cudnn(tensor.finalize(), "finalizing a tensor");
    return tensor;
  };
  CudnnDescriptor& attention = part(CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR);
  attention.set(CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, tensor(kQueries, 3 * width, type, false));
  attention.set(CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, tensor(kKeys, 3 * width, type, false));
  attention.set(CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, tensor(kValues, 3 * width, type, false));
  attention.set(CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, tensor(kOutput, width, type, false));
  attention.set(CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, tensor(kScale, 1, CUDNN_DATA_FLOAT, true));
  check_cudnn(attention.finalize(), "finalizing the attention operation");

  CudnnDescriptor& graph = part(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnHandle_t handle = as_handle(handle_);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &handle);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, attention);
  check_cudnn(graph.finalize(), "finalizing the operation graph");

  CudnnDescriptor& heuristics = part(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
  check_cudnn(heuristics.finalize(), "finalizing the heuristics");
  int64_t count = 0;
  check_cudnn(cudnn().get_attribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                    0, &count, nullptr),
              "counting the heuristics' engine configurations");
  std::vector<std::unique_ptr<CudnnDescriptor>> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.push_back(std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(configs.back()->get());
  }
  check_cudnn(cudnn().get_attribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                    count, &count, raw.data()),
              "reading the heuristics' engine configurations");
  // The heuristics' order, first one that builds.
  for (int64_t i = 0; i < count; ++i) {
    auto candidate = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    const cudnnBackendDescriptor_t config = raw[i];
    candidate->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &handle);
    candidate->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &config);
    if (candidate->finalize() != CUDNN_STATUS_SUCCESS) continue;
    int64_t bytes = 0, returned = 0;
    check_cudnn(cudnn().get_attribute(candidate->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                      1, &returned, &bytes),
                "reading a plan's workspace size");
    // Which engine it is, for the records (the attribute fills a descriptor made for it).
    CudnnDescriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    cudnnBackendDescriptor_t engine_raw = engine.get();
    if (cudnn().get_attribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &returned,
                              &engine_raw) == CUDNN_STATUS_SUCCESS) {
      cudnn().get_attribute(engine_raw, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &returned, &plan.engine);
    }
    plan.workspace.resize(size_t(bytes));
    plan.plan = std::move(candidate);
    for (auto& config_descriptor : configs) plan.parts.push_back(std::move(config_descriptor));
    return plan;
  }
  fail("cuDNN attention: none of {} engine configurations builds {} images of {} tokens, {} heads of {}", count, batch,
       sequence_, heads_, head_dim_);
}

CudnnAttention::Plan& CudnnAttention::plan(int batch) {
  if (batch < 1 || batch > max_batch_) fail("cuDNN attention: {} images, planned for 1-{}", batch, max_batch_);
  auto found = plans_.find(batch);
  if (found == plans_.end()) found = plans_.emplace(batch, std::make_unique<Plan>(build(batch))).first;
  return *found->second;
}

void CudnnAttention::prepare(int batch) { plan(batch); }

int64_t CudnnAttention::engine(int batch) { return plan(batch).engine; }

void CudnnAttention::run(const void* qkv, int batch, void* out, cudaStream_t stream) {
  Plan& plan = this->plan(batch);
  if (plan.pack == nullptr || plan.pack_qkv != qkv || plan.pack_out != out) {
    const size_t width_bytes = size_t(heads_) * head_dim_ * dtype_size(dtype_);
    const char* base = static_cast<const char*>(qkv);
    std::array<void*, 5> pointers = {const_cast<char*>(base), const_cast<char*>(base + width_bytes),
                                     const_cast<char*>(base + 2 * width_bytes), out, &scale_};
    const std::array<int64_t, 5> uids = {kQueries, kKeys, kValues, kOutput, kScale};
    void* workspace = plan.workspace.data();
    auto pack = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(), int64_t(uids.size()));
    pack->set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.data(), int64_t(pointers.size()));
    pack->set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace);
    check_cudnn(pack->finalize(), "finalizing the variant pack");
    plan.pack = std::move(pack);
    plan.pack_qkv = qkv;
    plan.pack_out = out;
  }
  check_cudnn(cudnn().set_stream(as_handle(handle_), stream), "setting the stream");
  check_cudnn(cudnn().execute(as_handle(handle_), plan.plan->get(), plan.pack->get()), "running the attention");
}

}  // namespace trocr::cuda

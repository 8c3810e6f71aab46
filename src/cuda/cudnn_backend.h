#pragma once
// cuDNN's backend API, loaded at run time (dlopen), so that a machine without cuDNN still runs
// the engine's own kernels: the library's entry points, its errors as trocr::Error, and a
// backend descriptor that destroys itself. cudnn_attention.h is its user in the engine.
#include <cudnn_graph.h>

#include <string>

namespace trocr::cuda {

// The part of cuDNN's C API the engine calls, resolved from the shared library.
struct CudnnLibrary {
  bool loaded = false;
  std::string why_not;  // where not loaded
  size_t (*get_version)();
  const char* (*error_string)(cudnnStatus_t);
  void (*last_error)(char*, size_t);
  cudnnStatus_t (*create)(cudnnHandle_t*);
  cudnnStatus_t (*destroy)(cudnnHandle_t);
  cudnnStatus_t (*set_stream)(cudnnHandle_t, cudaStream_t);
  cudnnStatus_t (*create_descriptor)(cudnnBackendDescriptorType_t, cudnnBackendDescriptor_t*);
  cudnnStatus_t (*destroy_descriptor)(cudnnBackendDescriptor_t);
  cudnnStatus_t (*finalize)(cudnnBackendDescriptor_t);
  cudnnStatus_t (*set_attribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t, cudnnBackendAttributeType_t,
                                 int64_t, const void*);
  cudnnStatus_t (*get_attribute)(cudnnBackendDescriptor_t const, cudnnBackendAttributeName_t,
                                 cudnnBackendAttributeType_t, int64_t, int64_t*, void*);
  cudnnStatus_t (*execute)(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t);
};

// libcudnn.so.9, loaded once; `loaded` is false (with why_not) where it is missing or lacks the
// backend API.
const CudnnLibrary& cudnn();

// Throws trocr::Error naming `what` and cuDNN's own message unless status is success.
void check_cudnn(cudnnStatus_t status, const char* what);

// One backend descriptor, destroyed with its owner.
class CudnnDescriptor {
 public:
  explicit CudnnDescriptor(cudnnBackendDescriptorType_t type);
  ~CudnnDescriptor();
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return descriptor_; }
  template <typename V>
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const V* values, int64_t count = 1) {
    check_cudnn(cudnn().set_attribute(descriptor_, name, type, count, values), "setting an attribute");
  }
  void set(cudnnBackendAttributeName_t name, const CudnnDescriptor& value) {
    const cudnnBackendDescriptor_t raw = value.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, &raw);
  }
  cudnnStatus_t finalize() { return cudnn().finalize(descriptor_); }

 private:
  cudnnBackendDescriptor_t descriptor_ = nullptr;
};

}  // namespace trocr::cuda

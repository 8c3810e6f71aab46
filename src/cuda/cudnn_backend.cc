#include "cuda/cudnn_backend.h"

#include <dlfcn.h>

#include <array>
#include <mutex>
#include <type_traits>

#include "common/check.h"

namespace trocr::cuda {

const CudnnLibrary& cudnn() {
  static CudnnLibrary library;
  static std::once_flag once;
  std::call_once(once, [] {
    void* handle = nullptr;
    for (const char* name : {"libcudnn.so.9", "libcudnn_graph.so.9"}) {
      if ((handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (handle == nullptr) {
      library.why_not = "libcudnn.so.9 was not found";
      return;
    }
    bool all = true;
    auto resolve = [&](auto& function, const char* name) {
      function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(handle, name));
      all = all && function != nullptr;
    };
    resolve(library.get_version, "cudnnGetVersion");
    resolve(library.error_string, "cudnnGetErrorString");
    resolve(library.last_error, "cudnnGetLastErrorString");
    resolve(library.create, "cudnnCreate");
    resolve(library.destroy, "cudnnDestroy");
    resolve(library.set_stream, "cudnnSetStream");
    resolve(library.create_descriptor, "cudnnBackendCreateDescriptor");
    resolve(library.destroy_descriptor, "cudnnBackendDestroyDescriptor");
    resolve(library.finalize, "cudnnBackendFinalize");
    resolve(library.set_attribute, "cudnnBackendSetAttribute");
    resolve(library.get_attribute, "cudnnBackendGetAttribute");
    resolve(library.execute, "cudnnBackendExecute");
    library.loaded = all;
    if (!all) library.why_not = "libcudnn.so.9 lacks the backend API";
  });
  return library;
}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  std::array<char, 512> detail{};
  cudnn().last_error(detail.data(), detail.size());
  fail("cuDNN: {} failed: {} ({})", what, cudnn().error_string(status), detail.data());
}

CudnnDescriptor::CudnnDescriptor(cudnnBackendDescriptorType_t type) {
  check_cudnn(cudnn().create_descriptor(type, &descriptor_), "creating a descriptor");
}

CudnnDescriptor::~CudnnDescriptor() {
  if (descriptor_ != nullptr) cudnn().destroy_descriptor(descriptor_);
}

}  // namespace trocr::cuda

// trocr devices: the GPUs the CUDA engine can use.
#include <fmt/format.h>

#include "cli/commands.h"
#ifdef TROCR_WITH_CUDA
#include "cuda/device_info.h"
#endif

namespace trocr::cli {

Action add_devices_command(CLI::App& app) {
  app.add_subcommand("devices", "List the GPUs the CUDA engine can use");
  return []() {
#ifdef TROCR_WITH_CUDA
    const CudaDevices found = query_cuda_devices();
    if (found.devices.empty()) fmt::print("{}; the CPU engine is available\n", found.absent_because);
    for (const auto& device : found.devices) {
      fmt::print("cuda:{}  {}  sm_{}{}  {} SMs  {:.1f} GiB\n", device.index, device.name,
                 device.compute_major, device.compute_minor, device.multiprocessors,
                 device.memory_bytes / double(1u << 30));
    }
#else
    fmt::print("built without CUDA (the CPU engine is available)\n");
#endif
    return 0;
  };
}

}  // namespace trocr::cli

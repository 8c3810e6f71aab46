#include "cpu/threads.h"

#include <omp.h>
#include <sched.h>

#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace trocr::cpu {

int physical_cores() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return omp_get_num_procs();
  std::set<std::pair<std::string, std::string>> cores;  // (package, core) of each allowed CPU
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string package, core;
    std::ifstream(topology + "physical_package_id") >> package;
    std::ifstream(topology + "core_id") >> core;
    if (package.empty() || core.empty()) return CPU_COUNT(&allowed);  // no topology: count CPUs
    cores.emplace(package, core);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

void set_threads(int threads) {
  static const int cores = physical_cores();
  omp_set_num_threads(threads > 0 ? threads : cores);
}

int threads() { return omp_get_max_threads(); }

}  // namespace trocr::cpu

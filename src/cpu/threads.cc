#include "cpu/threads.h"

#include <omp.h>
#include <sched.h>

#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace trocr::cpu {
namespace {

// The CPUs this process was given, as OpenMP saw them when it started: its places when it has
// any, else this thread's affinity mask.
cpu_set_t process_cpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (const int places = omp_get_num_places(); places > 0) {
    for (int place = 0; place < places; ++place) {
      std::vector<int> ids(omp_get_place_num_procs(place));
      omp_get_place_proc_ids(place, ids.data());
      for (int id : ids) {
        if (id >= 0 && id < CPU_SETSIZE) CPU_SET(id, &cpus);
      }
    }
    return cpus;
  }
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) {
    for (int cpu = 0; cpu < omp_get_num_procs() && cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &cpus);
  }
  return cpus;
}

}  // namespace

int physical_cores() {
  const cpu_set_t allowed = process_cpus();
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

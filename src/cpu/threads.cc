#include "cpu/threads.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>

namespace trocr::cpu {
namespace {

// The CPUs this process was given, as OpenMP saw them when it started: its places when it has
// any (it may have bound the calling thread to the first place already), else the affinity
// mask, read before any binding of ours.
cpu_set_t process_cpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int places = omp_get_num_places();
  if (places > 0) {
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

const cpu_set_t& allowed_cpus() {
  static const cpu_set_t cpus = process_cpus();
  return cpus;
}

// The first allowed CPU of each physical core, by (package, core); without topology in /sys,
// every CPU.
std::vector<int> first_cpu_of_each_core() {
  std::map<std::pair<std::string, std::string>, int> cores;
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed_cpus())) continue;
    cpus.push_back(cpu);
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string package, core;
    std::ifstream(topology + "physical_package_id") >> package;
    std::ifstream(topology + "core_id") >> core;
    if (package.empty() || core.empty()) return cpus.empty() ? std::vector<int>{0} : cpus;
    cores.emplace(std::make_pair(package, core), cpu);
  }
  std::vector<int> firsts;
  for (const auto& [core, cpu] : cores) firsts.push_back(cpu);
  std::sort(firsts.begin(), firsts.end());
  return firsts.empty() ? std::vector<int>{0} : firsts;
}

bool openmp_places_threads() {
  return std::getenv("OMP_PLACES") != nullptr || std::getenv("OMP_PROC_BIND") != nullptr;
}

bool binding_wanted() {
  static const bool wanted = [] {
    const char* setting = std::getenv("TROCR_BIND_THREADS");
    return !openmp_places_threads() && !(setting && std::strcmp(setting, "0") == 0);
  }();
  return wanted;
}

std::atomic<bool> cores_taken{false};

void bind_this_thread(const cpu_set_t& cpus) { sched_setaffinity(0, sizeof(cpus), &cpus); }

}  // namespace

const std::vector<int>& core_cpus() {
  static const std::vector<int> cpus = first_cpu_of_each_core();
  return cpus;
}

int physical_cores() { return static_cast<int>(core_cpus().size()); }

void set_threads(int threads) { omp_set_num_threads(threads > 0 ? threads : physical_cores()); }

int threads() { return omp_get_max_threads(); }

CallThreads::CallThreads(int threads) {
  set_threads(threads);
  const int team = cpu::threads();
  if (!binding_wanted() || team < 2 || team > physical_cores()) return;
  if (cores_taken.exchange(true)) return;  // another call holds them: run this one unbound
  bound_ = true;
  sched_getaffinity(0, sizeof(caller_cpus_), &caller_cpus_);
#pragma omp parallel num_threads(team)
  {
    cpu_set_t core;
    CPU_ZERO(&core);
    CPU_SET(core_cpus()[omp_get_thread_num()], &core);
    bind_this_thread(core);
  }
}

CallThreads::~CallThreads() {
  if (!bound_) return;
#pragma omp parallel num_threads(cpu::threads())
  bind_this_thread(allowed_cpus());
  bind_this_thread(caller_cpus_);
  cores_taken = false;
}

}  // namespace trocr::cpu

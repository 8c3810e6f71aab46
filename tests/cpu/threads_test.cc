// The CPU engine's thread pool takes a thread per physical core by default (src/cpu/threads.h),
// also where OpenMP binds threads to cores itself.
#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cpu/threads.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

std::vector<int> this_thread_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof(set), &set);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

bool openmp_places_threads() { return std::getenv("OMP_PLACES") || std::getenv("OMP_PROC_BIND"); }

// Cores counted from /sys for the CPUs this thread may use: the oracle for physical_cores().
int cores_in_sys(const std::vector<int>& cpus) {
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu : cpus) {
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string package, core;
    std::ifstream(topology + "physical_package_id") >> package;
    std::ifstream(topology + "core_id") >> core;
    cores.emplace(package, core);
  }
  return int(cores.size());
}

// By default the team has a thread per physical core. Where OMP_PLACES=cores places the threads
// (OpenMP may already have bound this thread to the first core: ctest runs this test a second
// time so), it has one per place, not one (it had one, and ran 8x slower on 16 cores).
TEST(CpuThreads, DefaultTeamHasAThreadPerCore) {
  const int expected = openmp_places_threads() ? omp_get_num_places() : cores_in_sys(this_thread_cpus());
  EXPECT_EQ(cpu::physical_cores(), expected);
  cpu::set_threads(0);
  EXPECT_EQ(cpu::threads(), expected);
}

}  // namespace
}  // namespace trocr::test

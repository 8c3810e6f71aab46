// The CPU engine's thread team: how many threads it takes by default, and the per-call binding
// of its threads to cores (src/cpu/threads.h), read back from the kernel with sched_getaffinity.
#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cpu/threads.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

std::vector<int> cpus_of(const cpu_set_t& set) {
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

std::vector<int> this_thread_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof(set), &set);
  return cpus_of(set);
}

// Each team thread's CPUs, by thread number.
std::vector<std::vector<int>> team_cpus(int team) {
  std::vector<std::vector<int>> cpus(team);
#pragma omp parallel num_threads(team)
  cpus[omp_get_thread_num()] = this_thread_cpus();
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
// time so), it has one per place, not one.
TEST(CpuThreads, DefaultTeamHasAThreadPerCore) {
  const int expected = openmp_places_threads() ? omp_get_num_places() : cores_in_sys(this_thread_cpus());
  EXPECT_EQ(cpu::physical_cores(), expected);
  cpu::set_threads(0);
  EXPECT_EQ(cpu::threads(), expected);
}

TEST(CpuThreads, ACallBindsEachThreadToACoreOfItsOwnAndFreesThemAfter) {
  const int cores = cpu::physical_cores();
  if (cores < 2) GTEST_SKIP() << "one core: nothing to bind";
  if (openmp_places_threads()) GTEST_SKIP() << "OpenMP places the threads itself here";
  const std::vector<int> caller_before = this_thread_cpus();
  const auto team_before = team_cpus(cores);
  {
    const cpu::CallThreads team(cores);
    ASSERT_TRUE(team.bound());
    const auto bound = team_cpus(cores);
    std::set<int> distinct;
    for (int t = 0; t < cores; ++t) {
      ASSERT_EQ(bound[t].size(), 1u) << "thread " << t;
      EXPECT_EQ(bound[t][0], cpu::core_cpus()[t]) << "thread " << t;
      distinct.insert(bound[t][0]);
    }
    EXPECT_EQ(int(distinct.size()), cores);
    EXPECT_EQ(cores_in_sys(std::vector<int>(distinct.begin(), distinct.end())), cores);  // one per core

    // A second call meanwhile, from another thread, runs unbound: the cores are taken.
    bool other_bound = true;
    std::thread other([&] { other_bound = cpu::CallThreads(cores).bound(); });
    other.join();
    EXPECT_FALSE(other_bound);
  }
  EXPECT_EQ(this_thread_cpus(), caller_before);
  EXPECT_EQ(team_cpus(cores), team_before);
  // The cores are free again, and a team larger than the cores is never bound.
  EXPECT_TRUE(cpu::CallThreads(cores).bound());
  EXPECT_FALSE(cpu::CallThreads(cores + 1).bound());
}

}  // namespace
}  // namespace trocr::test

#pragma once
// The CPU engine's one thread pool: OpenMP's, which oneDNN's matrix products run on too, sized
// once and shared by every parallel loop of the engine, so that no call starts threads of its own.
#include <sched.h>

#include <cstddef>
#include <vector>

namespace trocr::cpu {

// The physical cores this process may run on (hyper-threads counted once). Where OpenMP places
// its threads itself (OMP_PLACES or OMP_PROC_BIND), the cores of its places.
int physical_cores();

// Sizes the pool: `threads` > 0, or 0 for physical_cores().
void set_threads(int threads);
int threads();

// One engine call's thread team, on the calling thread: sizes the pool and, for the call, binds
// each of its threads to a core of its own (one CPU per physical core), then frees them again.
// Threads that stay on their core keep their tiles in its cache: on a 16-core Xeon the encoder's
// products ran 14-22% faster bound (docs/CPU_ENGINE.md). It binds nothing where OpenMP places
// threads itself (OMP_PLACES, OMP_PROC_BIND), where TROCR_BIND_THREADS=0, where the team has
// more threads than there are cores, or while another call in the process holds the cores
// (two engines must not pin their threads onto the same cores).
class CallThreads {
 public:
  explicit CallThreads(int threads);
  ~CallThreads();
  CallThreads(const CallThreads&) = delete;
  CallThreads& operator=(const CallThreads&) = delete;
  bool bound() const { return bound_; }

 private:
  bool bound_ = false;
  cpu_set_t caller_cpus_{};  // the calling thread's own CPUs, given back at the end
};

// The CPUs a bound team uses, one per physical core, in order; thread t takes the t-th.
const std::vector<int>& core_cpus();

}  // namespace trocr::cpu

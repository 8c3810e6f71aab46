#pragma once
// The CPU engine's one thread pool: OpenMP's, which oneDNN's matrix products run on too, sized
// once and shared by every parallel loop of the engine, so that no call starts threads of its own.
#include <cstddef>

namespace trocr::cpu {

// The physical cores this process may run on (hyper-threads counted once). Where OpenMP places
// its threads itself (OMP_PLACES, OMP_PROC_BIND), the cores of its places: it may have bound the
// calling thread to one core already, so that thread's own CPUs do not tell.
int physical_cores();

// Sizes the pool: `threads` > 0, or 0 for physical_cores().
void set_threads(int threads);
int threads();

}  // namespace trocr::cpu

#pragma once
// The CPU engine's one thread pool: OpenMP's, which oneDNN's matrix products run on too, sized
// once and shared by every parallel loop of the engine, so that no call starts threads of its own.
#include <cstddef>

namespace trocr::cpu {

// The physical cores this process may run on (hyper-threads counted once).
int physical_cores();

// Sizes the pool: `threads` > 0, or 0 for physical_cores().
void set_threads(int threads);
int threads();

}  // namespace trocr::cpu

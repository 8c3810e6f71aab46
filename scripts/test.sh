#!/usr/bin/env bash
# Builds and runs the whole test suite: the release build (CUDA tests skip without a GPU),
# then the same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
# TROCR_SKIP_SANITIZERS=1 runs the release build only.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${TROCR_SKIP_SANITIZERS:-0}" != 1 ]; then
  # CUDA's runtime and the sanitizers do not mix; the CUDA code is covered by the build above.
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROCR_SANITIZE=ON \
    -DTROCR_CUDA=OFF
  cmake --build build-sanitize -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-sanitize --output-on-failure -j"$jobs"
fi

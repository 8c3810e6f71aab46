#!/usr/bin/env bash
# Builds and runs the whole test suite: the release build (CUDA tests skip without a GPU),
# then the same tests under AddressSanitizer and UndefinedBehaviorSanitizer, then the libFuzzer
# targets of the file readers (fuzz/, Clang; each mutates for TROCR_FUZZ_SECONDS, default 30,
# and replays its seeds and regression inputs). The last line counts passed, failed and skipped
# tests apart (scripts/count_tests.py).
# TROCR_SKIP_SANITIZERS=1 runs the release build only (no fuzzing either); TROCR_REQUIRE_GPU=1
# fails on any skip.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
reports=()

# ctest's exit status is read from its report, so that the counts are printed in any case.
run_suite() {
  local label=$1 build=$2
  rm -f "$build/ctest-report.xml"
  ctest --test-dir "$build" --output-on-failure -j"$jobs" --output-junit ctest-report.xml || true
  reports+=("$label=$build/ctest-report.xml")
}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
run_suite release build

# The Python package as pip installs it (scripts/setup.sh's .venv), against HF's goldens and the CLI.
bash scripts/install_python.sh build
TROCR_CLI=build/src/cli/trocr .venv/bin/python -m pytest -q -rs -p no:cacheprovider tests/python \
  --junitxml=build/python-tests.xml || true
reports+=("python=build/python-tests.xml")

# trocr serve's interfaces (KServe v2, JSON/base64, OpenAPI, access log) and abuse (a thousand
# slow connections, every limit, floods, SIGTERM, kill -9), on the CPU engine.
TROCR_CLI=build/src/cli/trocr .venv/bin/python -m pytest -q -rs -p no:cacheprovider tests/serve \
  --junitxml=build/serve-tests.xml || true
reports+=("serve=build/serve-tests.xml")

if [ "${TROCR_SKIP_SANITIZERS:-0}" != 1 ]; then
  # CUDA's runtime and the sanitizers do not mix; the CUDA code is covered by the build above.
  # -O1 -g1 (line tables: symbolized stack traces) instead of -O2 -g: ASan's own recommendation,
  # and half the compile time (Boost.Beast's HTTP server 210 -> 103 s on 2 cores), which is most
  # of a CI run.
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROCR_SANITIZE=ON \
    -DTROCR_CUDA=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
  cmake --build build-sanitize -j"$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite sanitizers build-sanitize
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROCR_FUZZ=ON \
    -DTROCR_FUZZ_SECONDS="${TROCR_FUZZ_SECONDS:-30}"
  cmake --build build-fuzz -j"$jobs"
  run_suite fuzzing build-fuzz
fi
/usr/bin/python3 scripts/count_tests.py "${reports[@]}"

#!/usr/bin/env bash
# Here (Debian): another commit's `trocr` for scripts/device_compare_binaries.sh, built in a git
# worktree the way scripts/device_build.sh builds this tree (sm_90, Debian-only libraries static,
# the shared ones beside it in lib/), packed into build-base-bin/base.tar.xz (git-ignored; carry it).
# usage: device_build_base.sh [COMMIT]   (default dfa9d1e, the commit before the #14 restructure)
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-dfa9d1e}
tree=/tmp/trocr-base-$commit
[ -d "$tree" ] || git worktree add "$tree" "$commit" > /dev/null
cmake -S "$tree" -B "$tree/build-device" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROCR_CUDA=ON -DTROCR_STATIC_DEPS=ON \
  -DTROCR_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null
cmake --build "$tree/build-device" -j"$(nproc)" --target trocr_cli
stage=build-base-bin/stage
rm -rf build-base-bin && mkdir -p "$stage/lib"
cp "$tree/build-device/src/cli/trocr" "$stage/trocr-$commit"
strip "$stage/trocr-$commit"
for library in $(ldd "$stage/trocr-$commit" | awk '/libcpp-httplib|libbrotli|libssl|libcrypto|libdnnl|libgomp|libOpenCL/ {print $3}'); do
  cp -L "$library" "$stage/lib/"
done
tar -C "$stage" -cJf build-base-bin/base.tar.xz .
rm -rf "$stage"
du -sh build-base-bin

#!/usr/bin/env bash
# Installs everything trocr-rt needs on a fresh Debian 12 machine (run as root), then builds.
# The CUDA toolkit is expected in /usr/local/cuda; without it the CPU engine alone is built.
#   --dev  also the tools that regenerate data and figures: the CJK fonts of the line renderer
#          (python/synth_lines.py), fonttools (python/subset_fonts.py), matplotlib (docs/REPORT.md)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libpng-dev libjpeg62-turbo-dev zlib1g-dev libwebp-dev libgif-dev libtiff-dev
  libdnnl-dev  # oneDNN: the CPU engine's matrix products
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libspdlog-dev libcpp-httplib-dev  # trocr serve (Beast, its access log) and load-test
  clang libclang-rt-14-dev  # the fuzz targets (libFuzzer), built by scripts/test.sh
  python3 python3-pil python3-numpy fonts-wqy-microhei
  pybind11-dev python3-dev python3-venv python3-setuptools python3-wheel python3-pytest  # trocr_rt
)
if [ "${1:-}" = --dev ]; then
  packages+=(fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming python3-fonttools python3-matplotlib)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: built build/src/cli/trocr"
bash scripts/install_python.sh build
echo "setup: installed trocr_rt into .venv (.venv/bin/python -c 'import trocr_rt')"

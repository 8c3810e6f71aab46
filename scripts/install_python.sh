#!/usr/bin/env bash
# Installs the Python package trocr_rt with Debian's pip into .venv (a virtual environment of
# Debian's Python that sees its numpy, Pillow and pytest), from the module of a CMake build.
# usage: install_python.sh [BUILD_DIR]   (default build; scripts/setup.sh and scripts/test.sh call it)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
TROCR_BUILD_DIR="${1:-build}" .venv/bin/python -m pip install --quiet --no-build-isolation --no-deps --no-index \
  --force-reinstall bindings/python
rm -rf bindings/python/build bindings/python/trocr_rt.egg-info  # pip's in-tree leftovers

#!/usr/bin/env bash
# Here (Debian): builds the binaries the GPU machine runs, with Debian-only libraries linked
# statically (that machine is Ubuntu with other sonames), into .device-bin/ (git-ignored;
# name it in the device tool's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROCR_CUDA=ON -DTROCR_STATIC_DEPS=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null
cmake --build build-device -j"$(nproc)" --target trocr_cli cuda_test engine_test persistent_probe encoder_products_probe \
  cudnn_attention_probe cudnn_gelu_probe
rm -rf .device-bin && mkdir -p .device-bin
cp build-device/src/cli/trocr build-device/tests/cuda_test build-device/tests/engine_test build-device/persistent_probe \
  build-device/encoder_products_probe build-device/cudnn_attention_probe build-device/cudnn_gelu_probe .device-bin/
strip .device-bin/*
ldd .device-bin/trocr | grep -v -E "linux-vdso|ld-linux|libc.so|libm.so|libstdc|libgcc_s|libcublas|libpthread|libdl|librt|libdnnl|libgomp|libOpenCL" || true
# Debian ships cpp-httplib (trocr serve) and oneDNN with its OpenMP runtime (the CPU engine) as
# shared libraries only, and libtiff is linked shared (its codecs pull in a dozen libraries):
# they travel with their dependencies in lib/ (the device scripts put that on LD_LIBRARY_PATH).
mkdir -p .device-bin/lib
for library in $(ldd .device-bin/trocr | awk '/libcpp-httplib|libbrotli|libssl|libcrypto|libdnnl|libgomp|libOpenCL|libtiff|libjbig|libLerc|libdeflate|libzstd|liblzma|libwebp|libsharpyuv|libjpeg/ {print $3}'); do
  cp -L "$library" .device-bin/lib/
done
# The Python module is compiled there, for that machine's Python (scripts/device_python.sh),
# against this library (PIC) and Debian's shared image libraries (their static archives are
# not PIC).
mkdir -p .device-bin/python-kit/include
cp build-device/src/libtrocr.a .device-bin/python-kit/
cp -r /usr/include/nlohmann .device-bin/python-kit/include/  # the box reader's JSON, header-only
for library in libpng16.so.16 libjpeg.so.62 libwebpdemux.so.2 libwebp.so.7 libgif.so.7; do
  cp -L /usr/lib/x86_64-linux-gnu/$library .device-bin/python-kit/
done
# Compressed, the binaries and libraries fit the device tool's 64 MiB.
tar -C .device-bin -cJf .device-bin/bin.tar.xz trocr cuda_test engine_test persistent_probe encoder_products_probe \
  cudnn_attention_probe cudnn_gelu_probe lib \
  python-kit
rm -r .device-bin/trocr .device-bin/cuda_test .device-bin/engine_test .device-bin/persistent_probe \
  .device-bin/encoder_products_probe .device-bin/cudnn_attention_probe .device-bin/cudnn_gelu_probe .device-bin/lib .device-bin/python-kit
du -sh .device-bin

#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): the Python package built
# for that machine's Python (its pybind11 and headers; the engine from the carried library), its
# tests with CUDA (every skip a failure), and python/eval_python_api.py on the demo set: HF's ids
# on the 400 lines in fp32 and fp16, and images/s of the Python API against `trocr eval` (EVAL=0
# skips it).
# Results: $OUT/python-tests.xml, python.log, python-demo.json.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
kit=.device-bin/python-kit
package=/tmp/trocr-python/trocr_rt
mkdir -p $package && cp bindings/python/trocr_rt/*.py $package/
version=$(sed -n 's/^project(trocr-rt VERSION \([^ ]*\) .*/\1/p' CMakeLists.txt)
g++ -O3 -fPIC -shared -std=c++17 $(python3 -m pybind11 --includes) -Iinclude -Isrc -I$kit/include -DTROCR_VERSION="\"$version\"" \
  bindings/python/core_module.cc -o $package/_core$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))') \
  $kit/libtrocr.a -L$kit -l:libpng16.so.16 -l:libjpeg.so.62 -l:libwebpdemux.so.2 -l:libwebp.so.7 -l:libgif.so.7 -lz \
  -L.device-bin/lib -l:libtiff.so.6 -l:libdnnl.so.2 -l:libgomp.so.1 -L/usr/local/cuda/lib64 -lcudart_static -lcublasLt -lcudadevrt \
  -ldl -lrt -lpthread -Wl,-rpath,$PWD/$kit:$PWD/.device-bin/lib:/usr/local/cuda/lib64 || { echo "the module did not build"; exit 1; }
export PYTHONPATH=/tmp/trocr-python
status=0
TROCR_CLI=.device-bin/trocr python3 -m pytest -q -rs -p no:cacheprovider tests/python \
  --junitxml="$out/python-tests.xml" > "$out/python.log" 2>&1 || status=1
tail -15 "$out/python.log"
TROCR_REQUIRE_GPU=1 python3 scripts/count_tests.py python="$out/python-tests.xml" || status=1
if [ "${EVAL:-1}" = 1 ]; then
  python3 python/eval_python_api.py --cli .device-bin/trocr --commit "$commit" --json "$out/python-demo.json" \
    ${EVAL_ARGUMENTS:-} | tee -a "$out/python.log" || status=1
fi
exit $status

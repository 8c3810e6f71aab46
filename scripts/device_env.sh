# Sourced by the scripts/device_*.sh that run trocr-rt on the GPU machine: where results go
# ($out, the device tool's $OUT), which commit they belong to ($commit, from $COMMIT), and the
# binaries of scripts/device_build.sh unpacked from the carried .device-bin, with the shared
# libraries that travel beside them on the library path.
out=${OUT:-/tmp/trocr-out}
commit=${COMMIT:-unknown}
mkdir -p "$out"
[ -x .device-bin/trocr ] || tar -C .device-bin -xJf .device-bin/bin.tar.xz
export LD_LIBRARY_PATH=$PWD/.device-bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1

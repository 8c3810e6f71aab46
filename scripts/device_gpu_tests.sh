#!/usr/bin/env bash
# On the GPU machine (through the device tool, carrying .device-bin from scripts/device_build.sh):
# the GPU test suite twice, with the kernels each op chooses and with TROCR_KERNELS=portable
# (every op's portable path, as on a pre-Ampere GPU), then the CLI on CUDA. Logs and XML reports
# go to $OUT.
# It fails on any failed test, any skipped test (TROCR_REQUIRE_GPU=1: a GPU machine that skips
# its GPU tests is broken) and any non-zero exit status.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
export TROCR_REQUIRE_GPU=1
mkdir -p build-device/tests/scratch
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/cli.log"
status=0
.device-bin/trocr devices | tee -a "$out/cli.log" || status=1
reports=()
for kernels in chosen portable; do
  for suite in cuda_test engine_test; do
    run="$suite-$kernels"
    echo "=== $run" >> "$out/suites.log"
    if [ $kernels = portable ]; then export TROCR_KERNELS=portable; else unset TROCR_KERNELS; fi
    .device-bin/$suite --gtest_output=xml:"$out/$run.xml" > "$out/$run.log" 2>&1 || { echo "$run: exit status $?"; status=1; }
    echo "=== $run"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |identical|worst logit|agreed|Failure|FAILED" "$out/$run.log"
    cat "$out/$run.log" >> "$out/suites.log" && rm "$out/$run.log"
    reports+=("$run=$out/$run.xml")
  done
done
unset TROCR_KERNELS
for dtype in fp32 fp16 bf16 fp8; do
  .device-bin/trocr recognize --device cuda --dtype $dtype -m tests/data/models/vit-char tests/data/images \
    >> "$out/cli.log" 2>&1 || { echo "trocr recognize --dtype $dtype: exit status $?"; status=1; }
done
# With every GPU hidden the CLI must refuse CUDA by name, not crash or fall back silently.
hidden=$(CUDA_VISIBLE_DEVICES= .device-bin/trocr recognize --device cuda -m tests/data/models/vit-char \
  tests/data/images/tiny.png 2>&1)
code=$?
echo "with CUDA_VISIBLE_DEVICES= (exit status $code): $hidden" | tee -a "$out/cli.log"
if [ $code != 1 ] || ! grep -q "no CUDA device" <<< "$hidden"; then
  echo "the CLI did not refuse CUDA by name with every GPU hidden"; status=1
fi
python3 scripts/count_tests.py "${reports[@]}" || status=1
exit $status

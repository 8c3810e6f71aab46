#!/usr/bin/env bash
# On the GPU machine (through the device tool, carrying .device-bin from scripts/device_build.sh):
# the GPU test suite, then the CLI on CUDA. Logs and JUnit XML go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
mkdir -p build-device/tests/scratch
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
status=0
.device-bin/cuda_test --gtest_output=xml:"$out/cuda_test.xml" 2>&1 | tee "$out/cuda_test.log" | grep -E "^\[  (PASSED|FAILED) |identical|Failure|FAILED" || status=1
grep -q "FAILED" "$out/cuda_test.log" && status=1
.device-bin/engine_test 2>&1 | tail -3
for dtype in fp32 fp16 bf16; do
  .device-bin/trocr recognize --device cuda --dtype $dtype -m tests/data/models/vit-char tests/data/images | tee -a "$out/cli.log"
done
exit $status

#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): the fp8 dtype (fp16 with the
# encoder's linear products in E4M3) against fp16 in one run: its GPU tests and the fp16 and fp8
# demo cases; trocr-base throughput in both dtypes, alternating, ROUNDS (2) rounds of `trocr bench`
# (greedy and beam 4 at batch 1, 32 and 256, exactly 20 new tokens, --profile for the encoder's
# share); then (ACCURACY=0 skips it) scripts/device_accuracy.sh for fp16 and fp8. Results in $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
export TROCR_REQUIRE_GPU=1
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing > "$out/models.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$out/gpu.txt"
.device-bin/cuda_test --gtest_filter="${FP8_TESTS:-CudaFp8Products.*:Precisions/CudaDemo.*/fp16:Precisions/CudaDemo.*/fp8}" \
  > "$out/fp8-tests.log" 2>&1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[       OK|identical|Failure|FAILED|expected|Which is" "$out/fp8-tests.log" | head -60
for round in $(seq 1 "${ROUNDS:-2}"); do
  for dtype in fp16 fp8; do
    .device-bin/trocr bench -m $models/trocr-base --name trocr-base --dtype $dtype --batch ${BATCHES:-1,32,256} \
      --beams 1,4 --repeat 5 --warmup 3 --commit "$commit" --profile --json "$out/bench-$dtype-$round.json" \
      | sed "s/^/[$dtype r$round] /"
  done
done
python3 bench/merge_records.py "$out" "bench-*.json" records.json
[ "${ACCURACY:-1}" = 1 ] && ACCURACY_DTYPES="fp16 fp8" bash "$(dirname "$0")/device_accuracy.sh"
exit 0

#!/usr/bin/env bash
# On the GPU machine (carry .device-bin): per-kernel GPU time of a trocr-rt run, by Nsight
# Compute (the device machine has no Nsight Systems). ncu serializes kernels and flushes caches
# between them, so durations overstate what a graph replay costs; read them as relative costs.
# PROFILE_MODEL, PROFILE_BATCH, PROFILE_BEAMS and PROFILE_SKIP (launches to skip: past the
# encoder and warm-up) choose the run; PROFILE_COUNT how many launches are profiled. The weight
# upload's dtype conversions are never counted. The report goes to $OUT/ncu.txt, and a table of
# time per kernel name (sum, count, mean) to $OUT/ncu-summary.txt.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
model=${PROFILE_MODEL:-trocr-base}
ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
  --kernel-name-base function --kernel-name 'regex:^(?!.*(float_to_half|float_to_bfloat16))' \
  --launch-skip "${PROFILE_SKIP:-3000}" --launch-count "${PROFILE_COUNT:-300}" \
  .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch "${PROFILE_BATCH:-1}" \
  --beams "${PROFILE_BEAMS:-1}" --repeat 1 --warmup 1 > "$out/ncu.txt" 2>&1
python3 bench/ncu_kernels.py "$out/ncu.txt" | tee "$out/ncu-summary.txt"

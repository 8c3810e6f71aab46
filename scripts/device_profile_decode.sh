#!/usr/bin/env bash
# On the GPU machine (carry .device-bin): per-kernel GPU time of a trocr-rt run, by Nsight
# Compute (the device machine has no Nsight Systems). ncu serializes kernels and flushes caches
# between them, so durations overstate what a graph replay costs; read them as relative costs.
# PROFILE_MODEL, PROFILE_BATCH, PROFILE_BEAMS and PROFILE_SKIP (launches to skip: past the
# encoder and warm-up) choose the run. The report goes to $OUT/ncu.txt.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
model=${PROFILE_MODEL:-trocr-base}
ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
  --launch-skip "${PROFILE_SKIP:-3000}" --launch-count 300 \
  .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch "${PROFILE_BATCH:-1}" \
  --beams "${PROFILE_BEAMS:-1}" --repeat 1 --warmup 1 > "$out/ncu.txt" 2>&1
grep -E "^  [^ ].*\(|gpu__time_duration" "$out/ncu.txt" | sed -E 's/\(const .*//' | tail -60

#!/usr/bin/env bash
# On the GPU machine: where two commits' binaries differ at one setting. Both binaries alternate
# ROUNDS times through `trocr bench --profile` (phase times of the last run), then Nsight Compute
# records every kernel of one whole run of each (no warm-up, so the counts are per run) and
# bench/ncu_kernels.py sets the per-kernel sums side by side. ncu serializes kernels and
# flushes caches: read its times as relative costs, and the counts as exact.
# Carry .device-bin and build-base-bin (as for scripts/device_compare_binaries.sh). Setting:
# PROFILE_MODEL (trocr-base), PROFILE_BATCH (1), PROFILE_BEAMS (4). Results under $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
base_commit=${BASE_COMMIT:-dfa9d1e}
mkdir -p /tmp/base-bin && tar -C /tmp/base-bin -xJf build-base-bin/base.tar.xz
base=(env LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit)
new=(.device-bin/trocr)
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing > "$out/models.log"
model=${PROFILE_MODEL:-trocr-base}
setting=(-m $models/$model --name $model --dtype fp16 --batch "${PROFILE_BATCH:-1}" --beams "${PROFILE_BEAMS:-4}")
for round in $(seq 1 "${ROUNDS:-3}"); do
  for side in base new; do
    declare -n binary=$side
    "${binary[@]}" bench "${setting[@]}" --repeat 20 --warmup 5 --profile | sed "s/^/[$side r$round] /" | tee -a "$out/phases.txt"
  done
done
for side in base new; do
  declare -n binary=$side
  ncu --clock-control none --metrics gpu__time_duration.sum --kernel-name-base function \
    --kernel-name 'regex:^(?!.*(float_to_half|float_to_bfloat16))' \
    "${binary[@]}" bench "${setting[@]}" --repeat 1 --warmup 0 > "$out/ncu-$side.txt" 2>&1
done
python3 bench/ncu_kernels.py "$out/ncu-base.txt" "$out/ncu-new.txt" | tee "$out/kernels.txt"
xz -9 "$out"/ncu-*.txt

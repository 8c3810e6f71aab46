#!/usr/bin/env bash
# On the GPU machine: where the encoder's time goes, two commits side by side. Nsight Compute
# records the first 110 kernels of one trocr-base greedy run at batch PROFILE_BATCH (32) for
# each binary, no warm-up: the encoder's ~100 launches, then the cross K/V product and the
# first decoder kernels; bench/ncu_kernels.py sums them per kernel, side by side. ncu
# serializes kernels and flushes caches between them: read its times as relative costs.
# Then each binary's `trocr bench --profile` phase times at that batch, ROUNDS (3) alternating.
# NCU=0 keeps to the phase times.
# Carry .device-bin and build-base-bin (as for scripts/device_compare_binaries.sh); results in $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
base_commit=${BASE_COMMIT:-92d2a84}
mkdir -p /tmp/base-bin && tar -C /tmp/base-bin -xJf build-base-bin/base.tar.xz
base=(env LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit)
new=(.device-bin/trocr)
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing > "$out/models.log"
batch=${PROFILE_BATCH:-32}
setting=(-m $models/trocr-base --name trocr-base --dtype fp16 --batch "$batch" --beams 1)
for side in $([ "${NCU:-1}" = 1 ] && echo base new); do
  declare -n binary=$side
  ncu --clock-control none --metrics gpu__time_duration.sum --kernel-name-base function --launch-count 110 \
    --kernel-name 'regex:^(?!.*(float_to_half|float_to_bfloat16))' \
    "${binary[@]}" bench "${setting[@]}" --repeat 1 --warmup 0 > "$out/ncu-encoder-$side.txt" 2>&1
  python3 bench/ncu_kernels.py "$out/ncu-encoder-$side.txt" > "$out/encoder-kernels-$side.txt"
done
[ "${NCU:-1}" = 1 ] && python3 bench/ncu_kernels.py "$out/ncu-encoder-base.txt" "$out/ncu-encoder-new.txt" \
  | tee "$out/encoder-kernels.txt"
for round in $(seq 1 "${ROUNDS:-3}"); do
  for side in base new; do
    declare -n binary=$side
    "${binary[@]}" bench "${setting[@]}" --repeat 10 --warmup 3 --profile | sed "s/^/[$side r$round] /" \
      | tee -a "$out/encoder-phases-$batch.txt"
  done
done
xz -9 "$out"/ncu-encoder-*.txt 2>/dev/null || true

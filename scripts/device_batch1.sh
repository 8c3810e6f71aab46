#!/usr/bin/env bash
# On the GPU machine: #16's batch-1 figures for this tree against another commit's `trocr`
# (carry .device-bin from scripts/device_build.sh and build-base-bin from device_build_base.sh),
# the binaries alternating over ROUNDS rounds. `trocr bench` at batch 1, greedy and beam 4,
# exactly 20 new tokens, fp16, with --profile (encoder and decoding phases), on the demo model,
# trocr-small and trocr-base (random weights, real shapes). Then `trocr eval --batch 1` on the demo set with the demo's own beam-4 settings (#16's eval
# target), each binary three times. Output: $OUT/batch1.log and $OUT/records.json.
# usage: BASE_COMMIT=48f57e3 COMMIT=<this tree> bash scripts/device_batch1.sh
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
base_commit=${BASE_COMMIT:?which commit build-base-bin holds}
rounds=${ROUNDS:-2}
mkdir -p /tmp/base-bin && tar -C /tmp/base-bin -xJf build-base-bin/base.tar.xz
models=/tmp/full-models
[ -d $models/trocr-small ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing > "$out/models.log"
cp -r models/demo $models/demo
log="$out/batch1.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$log"
run() {  # run LABEL BINARY ARGS...: the binary's output, each line labelled
  local label=$1 binary=$2
  shift 2
  if [ "$binary" = base ]; then
    LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit "$@" 2>&1 | sed "s/^/[$label] /"
  else
    .device-bin/trocr "$@" 2>&1 | sed "s/^/[$label] /"
  fi
}
settings=(--dtype fp16 --batch 1 --beams 1,4 --new-tokens 20 --repeat 11 --warmup 3 --profile)
for round in $(seq 1 "$rounds"); do
  for model in demo trocr-small trocr-base; do
    run "$base_commit r$round" base bench -m $models/$model --name $model "${settings[@]}" --commit "$base_commit" \
      --json "$out/base-$model-$round.json" | tee -a "$log"
    run "$commit r$round" new bench -m $models/$model --name $model "${settings[@]}" --commit "$commit" \
      --json "$out/new-$model-$round.json" | tee -a "$log"
  done
done
for round in 1 2 3; do
  run "$base_commit eval r$round" base eval --device cuda --dtype fp16 --batch 1 -m models/demo data/synth-eval \
    | grep -E "CER|time" | tee -a "$log"
  run "$commit eval r$round" new eval --device cuda --dtype fp16 --batch 1 -m models/demo data/synth-eval \
    | grep -E "CER|time" | tee -a "$log"
done
python3 bench/merge_records.py "$out" "*-*.json" records.json

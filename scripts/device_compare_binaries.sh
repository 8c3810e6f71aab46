#!/usr/bin/env bash
# On the GPU machine: the binaries of two commits in one run, alternating, on full-size
# random-weight models (fp16, exactly 20 new tokens): trocr-base and trocr-small, batch 1, 8, 128
# and 256, greedy and beam 4, each figure the median of 5 timed runs, ROUNDS rounds (MODELS picks
# the models). Then (MEMORY=0 skips it) peak and median host RSS and peak GPU memory of trocr-base
# at batch 1 and 256 with beam 4, for each binary; then (CHOICE_CHECK=0 skips it) the cross-
# attention kernels against each other where the chooser decides between them.
# Carry .device-bin (this tree, scripts/device_build.sh) and build-base-bin/base.tar.xz (the
# other commit's trocr, its libraries in lib/). Results: $OUT/records.json and memory.json.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
base_commit=${BASE_COMMIT:-dfa9d1e}
rounds=${ROUNDS:-2}
compared_models=${MODELS:-trocr-base trocr-small}
mkdir -p /tmp/base-bin && tar -C /tmp/base-bin -xJf build-base-bin/base.tar.xz
base() { LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit "$@"; }
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing > "$out/models.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$out/gpu.txt"
settings=(--dtype fp16 --batch 1,8,128,256 --beams 1,4 --repeat 5 --warmup 3)
for round in $(seq 1 "$rounds"); do
  for model in $compared_models; do
    base bench -m $models/$model --name $model "${settings[@]}" --commit "$base_commit" \
      --json "$out/base-$model-$round.json" | sed "s/^/[$base_commit r$round] /"
    .device-bin/trocr bench -m $models/$model --name $model "${settings[@]}" --commit "$commit" \
      --json "$out/new-$model-$round.json" | sed "s/^/[$commit r$round] /"
  done
done
python3 bench/merge_records.py "$out" "*-trocr-*.json" records.json
for batch in $([ "${MEMORY:-1}" = 1 ] && echo 1 256); do
  python3 bench/measure_memory.py "$base_commit trocr-base beam 4 batch $batch" "$out/memory.json" -- \
    env LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit bench \
    -m $models/trocr-base --dtype fp16 --batch $batch --beams 4 --repeat 10 --warmup 2
  python3 bench/measure_memory.py "$commit trocr-base beam 4 batch $batch" "$out/memory.json" -- \
    .device-bin/trocr bench -m $models/trocr-base --dtype fp16 --batch $batch --beams 4 --repeat 10 --warmup 2
done
# The cross-attention over the encoder states against the grouped kernel where the chooser takes
# it (trocr-base greedy, batch 128 and 256), and what the ops chose, from --profile.
if [ "${CHOICE_CHECK:-1}" = 1 ]; then
  for round in 1 2; do
    for kernels in cross_attention=grouped cross_attention=encoder_states; do
      .device-bin/trocr bench -m $models/trocr-base --name trocr-base --dtype fp16 --batch 128,256 --beams 1 \
        --repeat 5 --warmup 3 --kernels $kernels --commit "$commit" --json "$out/choice-$kernels-$round.json" \
        | sed "s/^/[$kernels r$round] /"
    done
  done
  .device-bin/trocr bench -m $models/trocr-base --name trocr-base --dtype fp16 --batch 1,128 --beams 1,4 --repeat 1 \
    --warmup 1 --profile | grep -E "trocr-base|kernels"
  python3 bench/merge_records.py "$out" "choice-*.json" choices.json
fi

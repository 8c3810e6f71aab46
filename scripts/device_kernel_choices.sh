#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): the engine's kernel
# choices timed against each other in one run, fp16, trocr-base and trocr-small shapes:
# encoder attention gemm|fused and decoder cross-attention grouped|chunked|folded. Records (with the
# choice in each) go to $OUT/choices.json. CHOICES (encoder:cross pairs) and CHOICE_BATCHES narrow it.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
for model in trocr-base trocr-small; do
  for choice in ${CHOICES:-gemm:grouped fused:grouped gemm:chunked fused:folded}; do
    set -- ${choice/:/ }
    .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch ${CHOICE_BATCHES:-1,256} \
      --beams 1,4 --repeat 5 --warmup 2 --encoder-attention $1 --cross-attention $2 --profile \
      --commit "$commit" --json "$out/choice-$model-$1-$2.json" 2>&1 | tee -a "$out/choices.log"
  done
done
python3 bench/merge_records.py "$out" "choice-*.json" choices.json

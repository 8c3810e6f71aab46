#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): beam search with its
# bookkeeping on the device against the host doing it between steps, in one run, fp16,
# trocr-base and trocr-small shapes, plain beam 4 and trocr-chinese's settings. Records (with
# "beam_search" in each) go to $OUT/beam-search.json. BEAM_MODELS and BEAM_BATCHES narrow it.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
for model in ${BEAM_MODELS:-trocr-base trocr-small}; do
  for where in device host; do
    for settings in plain trocr-chinese; do
      flag=$([ $settings = trocr-chinese ] && echo --trocr-chinese)
      .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch ${BEAM_BATCHES:-1,8,32,128} \
        --beams 4 --repeat 5 --warmup 2 --beam-search $where $flag --profile \
        --commit "$commit" --json "$out/beam-$model-$where-$settings.json" 2>&1 | tee -a "$out/beam-search.log"
    done
  done
done
python3 bench/merge_records.py "$out" "beam-*.json" beam-search.json

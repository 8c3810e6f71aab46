#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): scripts/serve_batching.sh
# on CUDA, fp16, greedy: the demo model with the 64 mixed-length lines (max batch 64; LEVELS 16,64
# by default) and the trocr-base shape (random weights: every line runs to max_length) with
# data/samples/date.jpg (max batch 128, LEVELS 16,128, the serve gap's load). Results in $OUT
# (names end in SUFFIX); MAX_WAIT_MS (2) is the servers' --max-wait-ms; BEAMS (1) the servers'
# --beams (4: beam search in flight against whole batches).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models --models trocr-base 2>&1 | grep -v Writing
export TROCR=.device-bin/trocr DEVICE=cuda DTYPE=fp16 MAX_WAIT_MS=${MAX_WAIT_MS:-2} COMMIT=$commit
for model in ${SERVE_MODELS:-demo trocr-base}; do
  case $model in
    demo) MODEL=models/demo MAX_BATCH=64 LEVELS=${DEMO_LEVELS:-16,64} RESULTS=$out/serve-batching-demo${SUFFIX:-} \
            bash scripts/serve_batching.sh ;;
    trocr-base) MODEL=$models/trocr-base MAX_BATCH=128 LEVELS=${BASE_LEVELS:-16,128} IMAGES=data/samples/date.jpg \
                  RESULTS=$out/serve-batching-trocr-base${SUFFIX:-} bash scripts/serve_batching.sh ;;
  esac
done

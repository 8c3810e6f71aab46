#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): builds full-size
# random-weight models with HF, then times trocr-rt and HF transformers in one run. JSON and
# logs go to $OUT; bench/summarize.py turns them into bench/results/.
# BENCH_QUICK=1 skips HF (for iterating on the engine).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing | tee "$out/models.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
for model in trocr-base trocr-small; do
  for dtype in fp16 bf16 fp32; do
    .device-bin/trocr bench -m $models/$model --name $model --dtype $dtype --batch 1,8,32,128,256 \
      --beams 1,4 --repeat 5 --warmup 2 --commit "$commit" --json "$out/trocr-$model-$dtype.json" --profile
  done
  .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch 1,8,32,128 --beams 4 \
    --trocr-chinese --repeat 5 --warmup 2 --commit "$commit" --json "$out/trocr-$model-fp16-chinese.json"
done
if [ "${BENCH_QUICK:-0}" != 1 ]; then
  for model in trocr-base trocr-small; do
    python3 python/bench_hf.py --model-dir $models/$model --name $model --json "$out/hf-$model.json" 2>&1 | grep -v Warning
  done
fi
# One file back (the device tool returns a handful): every record, in one list.
python3 bench/merge_records.py "$out" "*.json" records.json "$commit"

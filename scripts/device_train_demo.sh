#!/usr/bin/env bash
# On the GPU machine: trains the demo model (python/train_demo.py) and has HF read the committed
# evaluation set with it. Carry .fonts (made here by python/subset_fonts.py).
#   device run, carry [.fonts]:  bash scripts/device_train_demo.sh [TRAIN_SECONDS] [extra args]
# Brings back $OUT/demo.tar.gz (the model folder), $OUT/train.log and $OUT/hf_eval.json.
set -euo pipefail
seconds=${1:-420}
shift || true
[ -d .fonts ] || { echo "carry .fonts (python/subset_fonts.py)"; exit 2; }
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/train.log"
python3 python/train_demo.py --out "$work/demo" --fonts .fonts --train-seconds "$seconds" "$@" 2>&1 \
  | grep -v -i warn | tee -a "$OUT/train.log"
tar -C "$work" -cf - demo | split -b 15m - "$OUT/demo.tar."  # files come back at most 16 MB each
if [ -d data/synth-eval ]; then
  python3 python/hf_eval.py --model "$work/demo" --data data/synth-eval --json "$OUT/hf_eval.json" 2>&1 \
    | grep -v -i warn | tee -a "$OUT/train.log"
fi

#!/usr/bin/env bash
# The README's first command: install, build, and read committed sample lines with the demo
# model (models/demo, trained by python/train_demo.py), on the CPU and, when there is one, the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
trocr=build/src/cli/trocr
model=models/demo
echo
echo "== $trocr inspect $model"
$trocr inspect "$model"
for image in data/samples/*.jpg; do
  echo
  echo "== $trocr recognize -m $model $image      (the image shows: $(cat "${image%.jpg}.txt"))"
  $trocr recognize -m "$model" "$image"
done
if $trocr devices | grep -q '^cuda:'; then
  echo
  echo "== $trocr recognize -m $model --device cuda --dtype fp16 data/samples"
  $trocr recognize -m "$model" --device cuda --dtype fp16 data/samples
fi
echo
echo "== $trocr eval -m $model data/synth-eval      (400 held-out synthetic lines)"
$trocr eval -m "$model" data/synth-eval
echo
echo "== the same from Python (trocr_rt, installed into .venv by scripts/setup.sh)"
.venv/bin/python - "$model" data/samples/date.jpg <<'PY'
import sys
import trocr_rt
recognizer = trocr_rt.Recognizer(sys.argv[1])
result = recognizer.recognize(sys.argv[2])
print(f"trocr_rt {trocr_rt.__version__}: {sys.argv[2]}\t{result.text}\t{result.confidence:.4f}")
PY

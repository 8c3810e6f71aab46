#!/usr/bin/env bash
# The README's first command: install, build, and run trocr on a committed model.
# Until the project trains its demo model, the model is a tiny
# random-weight HF checkpoint: it shows the pipeline working, not real text.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
model=tests/data/models/vit-char
echo
echo "== trocr inspect $model"
build/src/cli/trocr inspect "$model"
echo
echo "== trocr recognize -m $model tests/data/images"
build/src/cli/trocr recognize -m "$model" tests/data/images

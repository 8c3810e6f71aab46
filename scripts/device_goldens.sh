#!/usr/bin/env bash
# On the GPU machine: rebuild the HF golden models and records, pack them into $OUT.
# From the repo root, through the device tool:  bash scripts/device_goldens.sh
set -euo pipefail
work=$(mktemp -d)
PYTHONUNBUFFERED=1 python3 python/make_goldens.py --out "$work/models" 2>&1 | tee "$OUT/goldens.log"
tar -C "$work" -czf "$OUT/golden_models.tar.gz" models
ls -la "$OUT"

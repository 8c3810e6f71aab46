#!/usr/bin/env bash
# On the GPU machine (carry .device-bin): the persistent decoder's floor before its code (#16,
# docs/CUDA_ENGINE.md): grid barrier latency, weight streaming by per-SM slices, and a
# trocr-base step's stages with barriers against one launch per stage, at 256, 512 and 1024
# threads per block. Brings back $OUT/persistent-probe.json.
set -euo pipefail
source "$(dirname "$0")/device_env.sh"
for threads in 256 512 1024; do
  .device-bin/persistent_probe --threads $threads --repeat 50
done | python3 -c "
import json, sys
text = sys.stdin.read().replace('}\n{', '}\n\x00{')
records = [json.loads(part) for part in text.split('\x00') if part.strip()]
for record in records: record['commit'] = '$commit'
json.dump(records, open('$out/persistent-probe.json', 'w'), indent=1)
print(json.dumps(records, indent=1))"

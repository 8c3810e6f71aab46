#!/usr/bin/env bash
# On the GPU machine (carry .device-bin): where a batch-1 greedy run of trocr-base fp16 spends
# its time, kernel by kernel, as the GPU ran it (CUDA graphs traced node by node). Uses Nsight
# Systems when the machine has it, else Nsight Compute (which serializes kernels). Text reports go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
model=${PROFILE_MODEL:-trocr-base}
run=(.device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch ${PROFILE_BATCH:-1} --beams ${PROFILE_BEAMS:-1} --repeat 3 --warmup 1)
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -n "$nsys" ]; then
  "$nsys" profile --cuda-graph-trace=node --trace=cuda -o /tmp/decode --force-overwrite true "${run[@]}"
  "$nsys" stats --report cuda_gpu_kern_sum --format csv -o /tmp/decode-kernels /tmp/decode.nsys-rep > /dev/null
  "$nsys" stats --report cuda_gpu_trace --format csv -o /tmp/decode-trace /tmp/decode.nsys-rep > /dev/null
  cp /tmp/decode-kernels*.csv "$out/kernels.csv"
  # The trace of the last timed run only (kernels after the last large gap are that run's).
  python3 - /tmp/decode-trace*.csv "$out/trace-summary.txt" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
kern = [r for r in rows if r.get("Name") and "memcpy" not in r["Name"].lower() and "memset" not in r["Name"].lower()]
start = [int(r["Start (ns)"]) for r in kern]
dur = [int(r["Duration (ns)"]) for r in kern]
# Split runs at gaps over 1 ms.
runs, begin = [], 0
for i in range(1, len(kern)):
    if start[i] - (start[i - 1] + dur[i - 1]) > 1_000_000:
        runs.append((begin, i)); begin = i
runs.append((begin, len(kern)))
b, e = runs[-1]
wall = start[e - 1] + dur[e - 1] - start[b]
busy = sum(dur[b:e])
with open(sys.argv[2], "w") as f:
    f.write(f"last run: {e - b} kernels, wall {wall / 1e6:.3f} ms, kernels busy {busy / 1e6:.3f} ms, gaps {(wall - busy) / 1e6:.3f} ms\n")
    by = {}
    for i in range(b, e):
        name = kern[i]["Name"][:60]
        n, t = by.get(name, (0, 0)); by[name] = (n + 1, t + dur[i])
    for name, (n, t) in sorted(by.items(), key=lambda x: -x[1][1]):
        f.write(f"{t / 1e6:9.3f} ms {n:6d} x {t / n / 1e3:8.2f} us  {name}\n")
print(open(sys.argv[2]).read())
PY
else
  echo "no nsys; ncu per kernel (serialized)"
  ncu --clock-control none --metrics gpu__time_duration.sum --launch-skip 200 --launch-count 300 "${run[@]}" > "$out/ncu.txt" 2>&1
  tail -50 "$out/ncu.txt"
fi

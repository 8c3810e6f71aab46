#!/usr/bin/env bash
# On the GPU machine (carry .device-bin): per-kernel GPU time of a trocr-rt run, by Nsight
# Compute (the device machine has no Nsight Systems). ncu serializes kernels and flushes caches
# between them, so durations overstate what a graph replay costs; read them as relative costs.
# PROFILE_MODEL, PROFILE_BATCH, PROFILE_BEAMS and PROFILE_SKIP (launches to skip: past the
# encoder and warm-up) choose the run; PROFILE_COUNT how many launches are profiled. The weight
# upload's dtype conversions are never counted. The report goes to $OUT/ncu.txt, and a table of
# time per kernel name (sum, count, mean) to $OUT/ncu-summary.txt.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
model=${PROFILE_MODEL:-trocr-base}
ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
  --kernel-name-base function --kernel-name 'regex:^(?!.*(float_to_half|float_to_bfloat16))' \
  --launch-skip "${PROFILE_SKIP:-3000}" --launch-count "${PROFILE_COUNT:-300}" \
  .device-bin/trocr bench -m $models/$model --name $model --dtype fp16 --batch "${PROFILE_BATCH:-1}" \
  --beams "${PROFILE_BEAMS:-1}" --repeat 1 --warmup 1 > "$out/ncu.txt" 2>&1
python3 - "$out/ncu.txt" <<'PY' | tee "$out/ncu-summary.txt"
import re, sys
units = {"ns": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
kernels, name = {}, None
for line in open(sys.argv[1]):
    if line.startswith("  ") and not line.startswith("    ") and "Context" in line:
        name = re.sub(r"\(.*", "", line.strip().split(" (")[0])[:90]
    match = re.match(r"\s+gpu__time_duration.sum\s+(\S+)\s+([\d.,]+)", line)
    if match and name:
        total, count = kernels.get(name, (0.0, 0))
        kernels[name] = (total + float(match.group(2).replace(",", "")) * units.get(match.group(1), 1.0), count + 1)
grand = sum(t for t, _ in kernels.values())
print(f"{'us total':>10} {'share':>6} {'count':>6} {'us mean':>8}  kernel")
for name, (total, count) in sorted(kernels.items(), key=lambda item: -item[1][0]):
    print(f"{total:10.1f} {100 * total / grand:5.1f}% {count:6d} {total / count:8.2f}  {name}")
PY

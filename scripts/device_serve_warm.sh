#!/usr/bin/env bash
# On the GPU machine: `trocr serve --batching in-flight --profile` warm under 128 closed-loop
# clients (trocr-base shape, fp16, BEAMS (1), data/samples/date.jpg), this tree's binary
# (.device-bin) against BASE_COMMIT's (build-base-bin/base.tar.xz, scripts/device_build_base.sh),
# or with BASE_KERNELS against itself under TROCR_KERNELS=$BASE_KERNELS, or with BASE_SERVE_FLAGS
# against itself with those `trocr serve` flags (NEW_SERVE_FLAGS: this binary's own), alternating
# over ROUNDS (2); each server gets a warm-up level and a measured level of
# SECONDS_PER_LEVEL (10) at CLIENTS (128). The bench's best of this binary (batch 128 and 256, the
# serve target's denominator) is taken in the same call before the servers and after them: after
# them it read 1532-1960 images/s at batch 256 on four machines where bench-only calls read
# 1922-1952, so the record keeps both. Brings back $OUT/serve-warm.{json,log} and
# each server's engine profile (names end in SUFFIX).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
base_kernels=${BASE_KERNELS:-}
base_serve_flags=${BASE_SERVE_FLAGS:-}
new_serve_flags=${NEW_SERVE_FLAGS:-}
if [ -n "$base_kernels" ]; then
  base_commit="$commit-${base_kernels//[,=]/-}"
elif [ -n "$base_serve_flags" ]; then
  base_commit="$commit${base_serve_flags// /}"
else
  base_commit=${BASE_COMMIT:?which commit build-base-bin holds (or BASE_KERNELS)}
  mkdir -p /tmp/base-bin && tar -C /tmp/base-bin -xJf build-base-bin/base.tar.xz
fi
beams=${BEAMS:-1}
clients=${CLIENTS:-128}
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models --models trocr-base 2>&1 | grep -v Writing
name=serve-warm${SUFFIX:-}
log="$out/$name.log"
echo "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), commit $commit against $base_commit, beams $beams" | tee "$log"
bench() {  # the bench's best, into $out/$name-$1.json
  .device-bin/trocr bench -m $models/trocr-base --name trocr-base --dtype fp16 --batch 128,256 --beams $beams \
    --repeat 5 --warmup 3 --commit "$commit" --json "$out/$name-$1.json" 2>&1 | tee -a "$log"
}
echo "== the bench before the servers" | tee -a "$log"
bench bench-before
for round in $(seq "${ROUNDS:-2}"); do
  for which in base new; do
    flags=()
    if [ $which = base ] && [ -n "$base_kernels" ]; then
      binary=(env TROCR_KERNELS=$base_kernels .device-bin/trocr); label=$base_commit
    elif [ $which = base ] && [ -n "$base_serve_flags" ]; then
      binary=(.device-bin/trocr); label=$base_commit; read -ra flags <<< "$base_serve_flags"
    elif [ $which = base ]; then
      binary=(env LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit); label=$base_commit
    else
      binary=(.device-bin/trocr); label=$commit${new_serve_flags// /}; read -ra flags <<< "$new_serve_flags"
    fi
    "${binary[@]}" serve -m $models/trocr-base --device cuda --dtype fp16 --beams $beams --batching in-flight \
      --max-batch 128 --max-wait-ms 2 --queue-size 4096 --port 0 --access-log '' --profile "${flags[@]}" > /tmp/serve-warm.log 2>&1 &
    pid=$!
    for _ in $(seq 600); do grep -q "serve: ready" /tmp/serve-warm.log && break; sleep 0.1; done
    port=$(grep -o '127.0.0.1:[0-9]*' /tmp/serve-warm.log | head -1 | cut -d: -f2)
    echo "== round $round, $label" | tee -a "$log"
    .device-bin/trocr load-test --url http://127.0.0.1:$port --image data/samples/date.jpg --name "$label-round$round" \
      --concurrency $clients,$clients --seconds "${SECONDS_PER_LEVEL:-10}" --json /tmp/$name.$which.$round.json | tee -a "$log"
    kill -TERM $pid; wait $pid
    grep '^engine ' /tmp/serve-warm.log > "$out/$name-$label-round$round-profile.txt"
  done
done
echo "== the bench after the servers" | tee -a "$log"
bench bench
python3 - "$out" "$name" <<'PY'
import glob, json, os, sys
out, name = sys.argv[1:3]
records = []
for path in sorted(glob.glob(f"/tmp/{name}.*.json")):
    runs = json.load(open(path))
    for level, record in enumerate(runs):
        record.update(level="warm-up" if level == 0 else "measured")
        records.append(record)
json.dump(records, open(os.path.join(out, name + ".json"), "w"), indent=1)
PY

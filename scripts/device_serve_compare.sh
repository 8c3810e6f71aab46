#!/usr/bin/env bash
# On the GPU machine: `trocr serve` under load, this tree's server (Boost.Beast) against the
# cpp-httplib server of BASE_COMMIT (default dfa9d1e, build-base-bin/base.tar.xz from
# scripts/device_build_base.sh), one after the other on the same GPU: the demo model (its beam 4
# settings) and the trocr-base shape (greedy, 20 tokens), closed-loop clients on loopback at
# 1 to 256 (`trocr load-test`, SECONDS_PER_LEVEL each), ROUNDS times with the two servers
# alternating (run-to-run noise shows as the spread between rounds). Carry .device-bin and build-base-bin.
# Brings back $OUT/serve-compare.json and $OUT/serve-compare.log.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
base_commit=${BASE_COMMIT:-dfa9d1e}
seconds=${SECONDS_PER_LEVEL:-8}
mkdir -p /tmp/base-bin && tar -C /tmp/base-bin -xJf build-base-bin/base.tar.xz
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models --models trocr-base 2>&1 | grep -v Writing
log="$out/serve-compare.log"
echo "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), commit $commit against $base_commit" | tee "$log"

run_server() {  # layer, model name, model dir, max batch, levels
  local layer=$1 name=$2 model=$3 batch=$4 levels=$5 pid port
  if [ "$layer" = beast ]; then
    .device-bin/trocr serve -m "$model" --device cuda --dtype fp16 --port 0 --max-batch "$batch" --max-wait-ms 2 \
      --queue-size 4096 --access-log /tmp/access-$name.log > /tmp/serve-$layer-$name.log 2>&1 &
  else
    LD_LIBRARY_PATH=/tmp/base-bin/lib:$LD_LIBRARY_PATH /tmp/base-bin/trocr-$base_commit serve -m "$model" --device cuda \
      --dtype fp16 --port 0 --max-batch "$batch" --max-wait-ms 2 --queue-size 4096 --http-threads 320 \
      > /tmp/serve-$layer-$name.log 2>&1 &
  fi
  pid=$!
  for _ in $(seq 120); do grep -q "listening" /tmp/serve-$layer-$name.log && break; sleep 0.5; done
  port=$(grep -o '127.0.0.1:[0-9]*' /tmp/serve-$layer-$name.log | head -1 | cut -d: -f2)
  for _ in $(seq 120); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/readyz)" = 200 ] && break; sleep 0.5; done
  echo "== $layer $name" | tee -a "$log"
  .device-bin/trocr load-test --url http://127.0.0.1:$port --image data/samples/date.jpg --name "$layer-$name" \
    --concurrency "$levels" --seconds "$seconds" --json /tmp/compare-$layer-$name-round$round.json 2>&1 | tee -a "$log"
  kill -TERM $pid; wait $pid; echo "exit code $? after SIGTERM" | tee -a "$log"
}
for round in $(seq "${ROUNDS:-1}"); do
  echo "== round $round" | tee -a "$log"
  for layer in httplib beast; do
    run_server $layer demo models/demo 256 1,16,64,128,256
    run_server $layer trocr-base $models/trocr-base 128 1,16,64,128,256
  done
done
python3 - "$out" "$commit" "$base_commit" <<'PY'
import glob, json, os, subprocess, sys
out, commit, base = sys.argv[1:4]
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.split("\n")[0]
records = []
for path in sorted(glob.glob("/tmp/compare-*.json")):
    for record in json.load(open(path)):
        layer = record["name"].split("-", 1)[0]
        record.update(gpu=gpu, layer=layer, commit=commit if layer == "beast" else base, dtype="fp16",
                      round=int(path.rsplit("round", 1)[1].split(".")[0]))
        records.append(record)
json.dump(records, open(os.path.join(out, "serve-compare.json"), "w"), indent=1)
print(len(records), "records")
PY

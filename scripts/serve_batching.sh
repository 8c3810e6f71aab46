#!/usr/bin/env bash
# `trocr serve --batching whole` against `--batching in-flight` under the same closed-loop load,
# the two alternating over ROUNDS (2) rounds, at LEVELS (4,16) clients, SECONDS_PER_LEVEL (8) each
# (RATES=R1,R2 instead: open-loop Poisson arrivals at those requests per second).
# By default here, on the CPU engine: the demo model made greedy (BEAMS, 1: the CPU engine's
# in-flight batching is greedy's; the CUDA engine's takes beam search too), max batch 16, clients
# sending the first 64 lines of data/synth-eval in turn (lines of
# 1-25 characters, so lines end at different steps). DEVICE, DTYPE, MODEL, MAX_BATCH and IMAGES
# (files), MAX_WAIT_MS (5) and SERVE_FLAGS (--profile: the engine's phases, kept beside the
# results) change that (scripts/device_serve_batching.sh runs it on the GPU); TROCR
# (build/src/cli/trocr) is the binary. Writes RESULTS (bench/results/DATE-cpuN-COMMIT-serve-batching)
# .json and .log.
set -euo pipefail
cd "$(dirname "$0")/.."
trocr=${TROCR:-build/src/cli/trocr}
commit=${COMMIT:-$(git rev-parse --short HEAD)}
name=${RESULTS:-bench/results/$(date +%Y-%m-%d)-cpu$(nproc)-$commit-serve-batching}
model=${MODEL:-models/demo}
images=${IMAGES:-$(ls data/synth-eval/*.jpg | sed -n 1,64p)}  # sed reads all: head would end ls with SIGPIPE, which pipefail and -e turn into a silent exit
: > "$name.log"
records=()
for round in $(seq "${ROUNDS:-2}"); do
  for batching in whole in-flight; do
    $trocr serve -m "$model" --device "${DEVICE:-cpu}" --dtype "${DTYPE:-fp32}" --beams "${BEAMS:-1}" --batching $batching \
      --max-batch "${MAX_BATCH:-16}" --max-wait-ms "${MAX_WAIT_MS:-5}" --queue-size 4096 --port 0 --access-log '' \
      ${SERVE_FLAGS:-} > /tmp/serve-batching.log 2>&1 &
    pid=$!
    for _ in $(seq 600); do grep -q "serve: ready" /tmp/serve-batching.log && break; sleep 0.1; done
    port=$(grep -o '127.0.0.1:[0-9]*' /tmp/serve-batching.log | head -1 | cut -d: -f2)
    echo "== round $round, --batching $batching" | tee -a "$name.log"
    $trocr load-test --url http://127.0.0.1:$port --image $images --name "$batching-round$round" \
      $([ -n "${RATES:-}" ] && echo "--rate $RATES" || echo "--concurrency ${LEVELS:-4,16}") --seconds "${SECONDS_PER_LEVEL:-8}" --json /tmp/batching-$batching-$round.json \
      | tee -a "$name.log"
    kill -TERM $pid; wait $pid || true
    grep '^engine ' /tmp/serve-batching.log > "$name-$batching-round$round-profile.txt" || rm -f "$name-$batching-round$round-profile.txt"
    records+=(/tmp/batching-$batching-$round.json)
  done
done
python3 - "$name.json" "$commit" "$model" "${DEVICE:-cpu}" "${DTYPE:-fp32}" "${BEAMS:-1}" "${records[@]}" <<'PY'
import json, sys
out, commit, model, device, dtype, beams, paths = *sys.argv[1:7], sys.argv[7:]
search = " (greedy)" if beams == "1" else f" (beam {beams})"
records = []
for path in paths:
    for record in json.load(open(path)):
        record.update(commit=commit, batching=record["name"].rsplit("-round", 1)[0], model=model + search,
                      device=device, dtype=dtype)
        records.append(record)
json.dump(records, open(out, "w"), indent=1)
PY
echo "wrote $name.json"

#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): `trocr serve` under load.
# For the demo model (fp16) and the trocr-base shape (fp16, random weights): closed-loop clients
# on loopback at rising concurrency (`trocr load-test`: images/s, p50/p90/p99), then a soak run
# at fixed concurrency sampling the server's resident memory from /metrics and the GPU's memory
# from nvidia-smi. Also the CPU engines: trocr-rt CPU and HF eager on the CPU, same machine.
# Brings back $OUT/serve.json, $OUT/cpu.json and $OUT/serve.log. SOAK_SECONDS sets the soak's length
# (0: none), SERVE_MODELS the models (demo trocr-base), DEVICES the servers' --device values, each
# measured in turn ("cuda:0 cuda" compares one GPU with all of them), LEVELS the concurrencies,
# SERVE_FLAGS extra serve flags (--profile: each batch's engine phases and graph captures, kept
# in $OUT/engine-profile-NAME.txt).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
soak_seconds=${SOAK_SECONDS:-120}
trocr=.device-bin/trocr
models=/tmp/full-models
[ -d $models/trocr-base ] || python3 python/make_full_models.py --out $models --models trocr-base$([ "${SERVE_CPU:-1}" = 1 ] && echo ,trocr-small) 2>&1 | grep -v Writing
log="$out/serve.log"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "$gpu, commit $commit" | tee "$log"

serve_and_load() {  # name, model dir, max batch, concurrency list, seconds per level, soak concurrency, device
  local name=$1 model=$2 batch=$3 levels=${LEVELS:-$4} seconds=$5 soak=$6 device=$7
  [ "$soak_seconds" -gt 0 ] || soak=0
  $trocr serve -m "$model" --device "$device" --dtype fp16 --port 0 --max-batch "$batch" --max-wait-ms 2 \
    --queue-size 4096 --access-log /tmp/access-$name.log ${SERVE_FLAGS:-} > /tmp/serve-$name.log 2>&1 &
  local pid=$!
  for _ in $(seq 60); do grep -q "serve: ready" /tmp/serve-$name.log && break; sleep 1; done
  local port
  port=$(grep -o '127.0.0.1:[0-9]*' /tmp/serve-$name.log | cut -d: -f2)
  echo "== $name: $(grep "serve: ready" /tmp/serve-$name.log)" | tee -a "$log"
  $trocr load-test --url http://127.0.0.1:$port --image data/samples/date.jpg --name "$name" \
    --concurrency "$levels" --seconds "$seconds" --json /tmp/load-$name.json 2>&1 | tee -a "$log"
  if [ "$soak" -gt 0 ]; then
    echo "== $name soak: $soak clients, ${soak_seconds}s" | tee -a "$log"
    (for _ in $(seq $((soak_seconds / 10))); do
       nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 10; done) > /tmp/gpu-mem-$name.txt &
    local sampler=$!
    $trocr load-test --url http://127.0.0.1:$port --image data/samples/date.jpg --name "$name-soak" \
      --concurrency "$soak" --seconds "$soak_seconds" --memory-every-s 10 --json /tmp/soak-$name.json 2>&1 | tee -a "$log"
    kill $sampler 2>/dev/null
    echo "GPU memory used (MiB, every 10 s): $(tr '\n' ' ' < /tmp/gpu-mem-$name.txt)" | tee -a "$log"
  fi
  curl -s http://127.0.0.1:$port/metrics | grep -E "^trocr_(requests_total|images_total|device_images_total|batch_size_(sum|count)|batch_inference_seconds_(sum|count)|queue_seconds_(sum|count)|request_seconds_(sum|count))" | tee -a "$log"
  kill -TERM $pid
  wait $pid
  grep '^engine ' /tmp/serve-$name.log > "$out/engine-profile-${name//[^a-zA-Z0-9-]/_}.txt" || true
  echo "serve exit code $? after SIGTERM" | tee -a "$log"
}
for device in ${DEVICES:-cuda}; do
  suffix=$([ "${DEVICES:-cuda}" = cuda ] || echo "@$device")  # names carry the device when several are compared
  for model in ${SERVE_MODELS:-demo trocr-base}; do
    case $model in
      demo) serve_and_load "demo$suffix" models/demo 256 1,4,16,64,128,256 8 128 "$device" ;;
      trocr-base) serve_and_load "trocr-base$suffix" $models/trocr-base 128 1,16,64,128 8 0 "$device" ;;
    esac
  done
done

# SERVE_CPU=0 skips the CPU engines (they do not change with GPU work).
[ "${SERVE_CPU:-1}" = 1 ] && echo "== CPU engines (demo model and trocr-small shape), $(nproc) cores" | tee -a "$log"
[ "${SERVE_CPU:-1}" = 1 ] && for model in demo trocr-small; do
  dir=$models/$model
  [ $model = demo ] && dir=models/demo
  $trocr bench -m $dir --name $model --device cpu --dtype fp32 --batch 1,8 --beams 1,4 --repeat 3 --warmup 1 \
    --commit "$commit" --json /tmp/cpu-trocr-$model.json 2>&1 | tee -a "$log"
  python3 python/bench_hf.py --model-dir $dir --name $model --device cpu --dtypes fp32 --batches 1,8 --beams 1,4 \
    --repeat 3 --warmup 1 --json /tmp/cpu-hf-$model.json 2>&1 | grep -v -i warn | tee -a "$log"
done
python3 - "$out" "$commit" "$gpu" <<'PY'
import glob, json, os, sys
out, commit, gpu = sys.argv[1:4]
serve = []
for path in sorted(glob.glob("/tmp/load-*.json") + glob.glob("/tmp/soak-*.json")):
    for record in json.load(open(path)):
        name = record["name"].removesuffix("-soak")
        record.update(gpu=gpu, gpus=int(os.popen("nvidia-smi -L | wc -l").read()), commit=commit, dtype="fp16",
                      device=name.split("@")[1] if "@" in name else "cuda")
        serve.append(record)
for path in glob.glob("/tmp/gpu-mem-*.txt"):
    name = os.path.basename(path)[len("gpu-mem-"):-4]
    for record in serve:
        if record["name"] == name + "-soak":
            record["gpu_memory_used_mib"] = [int(x) for x in open(path).read().split()]
json.dump(serve, open(os.path.join(out, "serve.json"), "w"), indent=1)
cpu = []
for path in sorted(glob.glob("/tmp/cpu-*.json")):
    for record in json.load(open(path)):
        record.update(commit=commit, host_gpu=gpu, cpu_cores=os.cpu_count())
        cpu.append(record)
json.dump(cpu, open(os.path.join(out, "cpu.json"), "w"), indent=1)
print(len(serve), "serve records,", len(cpu), "cpu records")
PY

#!/usr/bin/env bash
# On the GPU machine (carry .device-bin): the ONNX Runtime comparison of #15. Exports the demo model
# and the trocr-small shape (python/export_onnx.py), checks ORT's ids against HF's on the demo set
# (python/ort_generate.py --check), then times ORT, trocr-rt and HF eager on the CPU with the same
# threads: batch 1 and 8, greedy and beam 4, exactly 20 new tokens. THREADS (1 2 16), MODELS
# (demo trocr-small), REPEAT (3) and WARMUP (1) narrow it; CHECK=0 skips the check against HF. Brings back $OUT/ort.json (the timings),
# $OUT/ort-check-*.json and $OUT/ort.log.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
log="$out/ort.log"
repeat=${REPEAT:-3} warmup=${WARMUP:-1}
[ -d $models/trocr-small ] || python3 python/make_full_models.py --out $models --models trocr-small 2>&1 | grep -v Writing
echo "== $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), onnxruntime $(python3 -c 'import onnxruntime; print(onnxruntime.__version__)')" | tee "$log"
for model in ${MODELS:-demo trocr-small}; do
  dir=$models/$model
  [ $model = demo ] && dir=models/demo
  python3 python/export_onnx.py --model-dir $dir --out /tmp/onnx/$model 2>&1 | grep -v -i warn | tail -2 | tee -a "$log"
  [ $model = demo ] && [ "${CHECK:-1}" = 1 ] && python3 python/ort_generate.py --onnx /tmp/onnx/demo --model-dir $dir --name demo \
    --check data/synth-eval --json "$out/ort-check-demo.json" 2>&1 | grep -v -i warn | tail -3 | tee -a "$log"
  for threads in ${THREADS:-1 2 16}; do
    python3 python/ort_generate.py --onnx /tmp/onnx/$model --model-dir $dir --name $model --bench --threads $threads \
      --repeat $repeat --warmup $warmup --json /tmp/ort-bench-ort-$model-$threads.json 2>&1 | grep -v -i warn | tee -a "$log"
    .device-bin/trocr bench -m $dir --name $model --device cpu --dtype fp32 --batch 1,8 --beams 1,4 --threads $threads \
      --repeat $repeat --warmup $warmup --commit "$commit" --json /tmp/ort-bench-trocr-$model-$threads.json 2>&1 | tee -a "$log"
    python3 python/bench_hf.py --model-dir $dir --name $model --device cpu --dtypes fp32 --batches 1,8 --beams 1,4 \
      --threads $threads --repeat $repeat --warmup $warmup --json /tmp/ort-bench-hf-$model-$threads.json 2>&1 \
      | grep -v -i warn | tee -a "$log"
  done
done
python3 - "$out" "$commit" <<'PY'
import glob, json, os, sys
out, commit = sys.argv[1:3]
records = []
for path in sorted(glob.glob("/tmp/ort-bench-*.json")):
    threads = int(path.rsplit("-", 1)[1][:-5])
    for record in json.load(open(path)):
        record.update(commit=commit, cpu_cores=os.cpu_count(), threads=threads)
        records.append(record)
json.dump(records, open(os.path.join(out, "ort.json"), "w"), indent=1)
print(len(records), "records")
PY

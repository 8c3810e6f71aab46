#!/usr/bin/env bash
# On the GPU machine's host CPU (16 cores; carry .device-bin from scripts/device_build.sh): the
# CPU engine against HF eager PyTorch on the same cores, in one run: the demo model and the
# trocr-small shape, batch 1 and 8, greedy and beam 4, exactly 20 new tokens, fp32 (and bf16
# for trocr-rt where the CPU has it); then trocr-base's peak RSS on the CPU.
# THREAD_SCALING=1 instead times trocr-small at batch 8 greedy (#15's slowest cell, the encoder)
# with 1, 2, 4, 8 and 16 threads for both engines, and prints the CPU's topology.
# SPLIT=1 instead times that cell with 1 and with 20 new tokens, 7 repeats, the two engines
# alternating over ROUNDS (3) rounds: the encoder's share against the decoder's at 16 threads.
# AFFINITY=1 instead prints the CPU's topology and oneDNN's kernels (DNNL_VERBOSE), runs
# build/encoder_products_probe at 16 threads with OpenMP's threads free and bound to cores
# (OMP_PROC_BIND=close OMP_PLACES=cores), then times that cell with trocr-rt's own binding of its
# threads (the default) and without (TROCR_BIND_THREADS=0), and HF, alternating over ROUNDS (3) rounds.
# COMPARE_BINARY=PATH instead times that cell with .device-bin/trocr and the binary at PATH (another
# build, e.g. a branch's, built like scripts/device_build.sh with TROCR_STATIC_DEPS=ON), and HF,
# alternating over ROUNDS (4) rounds.
# Brings back $OUT/cpu.json and $OUT/cpu.log.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
log="$out/cpu.log"
[ -d $models/trocr-small ] || python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing > /dev/null
echo "== $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" | tee "$log"
if [ "${THREAD_SCALING:-0}" = 1 ]; then
  lscpu | grep -E "Model name|Socket|Core|Thread|NUMA|MHz|L2|L3|Flags" | cut -c1-200 | tee -a "$log"
  for threads in 1 2 4 8 16; do
    .device-bin/trocr bench -m $models/trocr-small --name trocr-small --device cpu --dtype fp32 --batch 8 --beams 1 \
      --repeat 3 --warmup 1 --threads $threads --commit "$commit" --json /tmp/cpu-trocr-threads-$threads.json 2>&1 | tee -a "$log"
    python3 python/bench_hf.py --model-dir $models/trocr-small --name trocr-small --device cpu --dtypes fp32 --batches 8 \
      --beams 1 --repeat 3 --warmup 1 --threads $threads --json /tmp/cpu-hf-threads-$threads.json 2>&1 | grep -v -i warn | tee -a "$log"
  done
fi
if [ "${AFFINITY:-0}" = 1 ]; then
  lscpu | grep -E "Model name|Socket|Core|Thread|NUMA|MHz|L1d|L2|L3" | tee -a "$log"
  lscpu | grep -o -E "avx512[a-z_0-9]*|amx[a-z_0-9]*" | sort -u | tr '\n' ' ' | tee -a "$log"; echo | tee -a "$log"
  DNNL_VERBOSE=1 .device-bin/encoder_products_probe 16 2>&1 | grep -m3 "exec,cpu" | cut -c1-200 | tee -a "$log"
  for bind in free bound; do
    echo "== encoder_products_probe 16, threads $bind" | tee -a "$log"
    if [ $bind = bound ]; then export OMP_PROC_BIND=close OMP_PLACES=cores; else unset OMP_PROC_BIND OMP_PLACES; fi
    .device-bin/encoder_products_probe 16 2>&1 | tee -a "$log"
  done
  unset OMP_PROC_BIND OMP_PLACES
  for round in $(seq "${ROUNDS:-3}"); do
    for bind in 1 0; do  # trocr-rt binds its threads to cores for each call unless TROCR_BIND_THREADS=0
      TROCR_BIND_THREADS=$bind .device-bin/trocr bench -m $models/trocr-small --name trocr-small-bind$bind --device cpu \
        --dtype fp32 --batch 8 --beams 1 --repeat 7 --warmup 1 --commit "$commit" \
        --json /tmp/cpu-affinity-trocr-bind$bind-$round.json 2>&1 | tee -a "$log"
    done
    python3 python/bench_hf.py --model-dir $models/trocr-small --name trocr-small --device cpu --dtypes fp32 --batches 8 \
      --beams 1 --repeat 7 --warmup 1 --json /tmp/cpu-affinity-hf-$round.json 2>&1 | grep -v -i warn | tee -a "$log"
  done
fi
if [ -n "${COMPARE_BINARY:-}" ]; then
  for round in $(seq "${ROUNDS:-4}"); do
    for binary in .device-bin/trocr "$COMPARE_BINARY"; do
      name=trocr-small-$([ "$binary" = .device-bin/trocr ] && echo base || echo compared)
      $binary bench -m $models/trocr-small --name $name --device cpu --dtype fp32 --batch 8 --beams 1 --repeat 7 \
        --warmup 1 --commit "$commit" --json /tmp/cpu-compare-$name-$round.json 2>&1 | tee -a "$log"
    done
    python3 python/bench_hf.py --model-dir $models/trocr-small --name trocr-small --device cpu --dtypes fp32 --batches 8 \
      --beams 1 --repeat 7 --warmup 1 --json /tmp/cpu-compare-hf-$round.json 2>&1 | grep -v -i warn | tee -a "$log"
  done
fi
if [ "${SPLIT:-0}" = 1 ]; then
  for round in $(seq "${ROUNDS:-3}"); do
    for tokens in 1 20; do
      .device-bin/trocr bench -m $models/trocr-small --name trocr-small --device cpu --dtype fp32 --batch 8 --beams 1 \
        --new-tokens $tokens --repeat 7 --warmup 1 --commit "$commit" --json /tmp/cpu-split-trocr-$tokens-$round.json 2>&1 | tee -a "$log"
      python3 python/bench_hf.py --model-dir $models/trocr-small --name trocr-small --device cpu --dtypes fp32 --batches 8 \
        --beams 1 --new-tokens $tokens --repeat 7 --warmup 1 --json /tmp/cpu-split-hf-$tokens-$round.json 2>&1 \
        | grep -v -i warn | tee -a "$log"
    done
  done
fi
only_default=$([ "${THREAD_SCALING:-0}${SPLIT:-0}${AFFINITY:-0}" = 000 ] && [ -z "${COMPARE_BINARY:-}" ] && echo 1 || echo 0)
[ $only_default = 1 ] && for model in demo trocr-small; do
  dir=$models/$model
  [ $model = demo ] && dir=models/demo
  for dtype in fp32 bf16; do
    .device-bin/trocr bench -m $dir --name $model --device cpu --dtype $dtype --batch 1,8 --beams 1,4 --repeat 5 \
      --warmup 2 --commit "$commit" --json /tmp/cpu-trocr-$model-$dtype.json 2>&1 | tee -a "$log"
  done
  python3 python/bench_hf.py --model-dir $dir --name $model --device cpu --dtypes fp32 --batches 1,8 --beams 1,4 \
    --repeat 5 --warmup 2 --json /tmp/cpu-hf-$model.json 2>&1 | grep -v -i warn | tee -a "$log"
done
# Peak resident memory of the CPU engine with trocr-base (batch 8, beam 4); the record goes to
# $out/memory.json.
[ $only_default = 1 ] && python3 bench/measure_memory.py "trocr-base on the CPU, batch 8, beam 4" "$out/memory.json" -- \
  .device-bin/trocr bench -m "$models/trocr-base" --device cpu --dtype fp32 --batch 8 --beams 4 --repeat 1 \
  --warmup 0 2>&1 | tee -a "$log"
python3 - "$out" "$commit" <<'PY'
import glob, json, os, sys
out, commit = sys.argv[1:3]
records = []
for path in sorted(glob.glob("/tmp/cpu-*.json")):
    for record in json.load(open(path)):
        record.update(commit=commit, cpu_cores=os.cpu_count())
        records.append(record)
json.dump(records, open(os.path.join(out, "cpu.json"), "w"), indent=1)
print(len(records), "cpu records")
PY

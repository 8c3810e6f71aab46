#!/usr/bin/env bash
# On the GPU machine (carry .device-bin from scripts/device_build.sh): error statistics of
# trocr-rt against HF fp32. HF builds random-weight models with the real trocr-base and
# trocr-small shapes (python/make_full_models.py) and, with those and the trained demo model,
# records its fp32 encoder output, teacher-forced logits and generated ids on lines of
# data/synth-eval (python/hf_reference.py); `trocr compare` measures each engine and dtype.
# Brings back $OUT/accuracy.json (a list of records) and $OUT/accuracy.log.
# ACCURACY_CUDA=0 measures the CPU engine alone (the demo model in fp32 and bf16);
# ACCURACY_DTYPES lists the CUDA engine's dtypes (fp32 fp16 bf16 fp8); ACCURACY_KERNELS lists
# TROCR_KERNELS specs to measure the CUDA engine under (`chosen`, the default, is the ops' own).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
models=/tmp/full-models
refs=/tmp/hf-references
mkdir -p $refs
cuda=${ACCURACY_CUDA:-1}
# Both models: an earlier command on the same machine may have made trocr-base alone.
[ $cuda = 0 ] || { [ -d $models/trocr-base ] && [ -d $models/trocr-small ]; } ||
  python3 python/make_full_models.py --out $models 2>&1 | grep -v Writing
log="$out/accuracy.log"
: > "$log"
reference() {  # model directory, name, image count
  python3 python/hf_reference.py --model "$1" --images data/synth-eval --count "$3" --out "$refs/$2" 2>&1 \
    | grep -v -i warn | tee -a "$log"
}
[ $cuda = 0 ] || reference $models/trocr-base trocr-base 16
[ $cuda = 0 ] || reference $models/trocr-small trocr-small 16
reference models/demo demo 64
[ $cuda = 0 ] || for model in trocr-base trocr-small demo; do
  dir=$models/$model
  [ $model = demo ] && dir=models/demo
  for dtype in ${ACCURACY_DTYPES:-fp32 fp16 bf16 fp8}; do
    for kernels in ${ACCURACY_KERNELS:-chosen}; do
      [ $kernels = chosen ] && spec="" || spec=$kernels
      echo "== $model cuda $dtype kernels $kernels" >> "$log"
      TROCR_KERNELS=$spec .device-bin/trocr compare --device cuda --dtype $dtype --batch 16 -m "$dir" -r "$refs/$model" \
        --name $model --json "$out/compare-$model-cuda-$dtype-${kernels//[,=]/-}.json" 2>&1 | tee -a "$log"
    done
  done
done
for dtype in fp32 bf16; do
  .device-bin/trocr compare --device cpu --dtype $dtype --batch 16 -m models/demo -r "$refs/demo" --name demo \
    --json "$out/compare-demo-cpu-$dtype.json" 2>&1 | tee -a "$log"
done
python3 - "$out" "$commit" <<'PY'
import glob, json, os, subprocess, sys
out, commit = sys.argv[1], sys.argv[2]
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                     text=True).stdout.strip().splitlines()[0]
records = []
for path in sorted(glob.glob(os.path.join(out, "compare-*.json"))):
    record = json.load(open(path))
    kernels = os.path.basename(path)[:-5].split("-cuda-")[-1].split("-", 1)
    record.update(gpu=gpu, commit=commit, kernels=kernels[1] if "-cuda-" in path and len(kernels) > 1 else "chosen",
                  weights="trained (demo)" if record["model"] == "demo" else "random (HF init, seed 0)")
    records.append(record)
    os.remove(path)
json.dump(records, open(os.path.join(out, "accuracy.json"), "w"), indent=1)
print(len(records), "accuracy records")
PY

#!/usr/bin/env bash
# The long fuzzing campaign, on the GPU machine's 16 CPU cores (#19).
#   here:  bash scripts/device_fuzz.sh pack      builds fuzz/ (Clang, ASan + UBSan) and packs the
#          targets with their shared libraries into .device-fuzz/ (carry it)
#   there: TARGETS="request image:300" RUNS=10000000 bash scripts/device_fuzz.sh run
#          runs each target as 16 libFuzzer jobs that share one corpus until RUNS executions in
#          all, then writes $OUT/fuzz-campaign.json (executions, coverage, features, corpus,
#          findings) and brings back any crash, leak or timeout input under $OUT/findings/.
#          SIDE_BY_SIDE=1 runs the targets at the same time, the cores shared out between them
#          (two targets on the 32-core host: 16 jobs each, within one device call).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?pack or run}
if [ "$mode" = pack ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROCR_FUZZ=ON > /dev/null
  cmake --build build-fuzz -j"$(nproc)"
  rm -rf .device-fuzz && mkdir -p .device-fuzz/pack/lib .device-fuzz/pack/seeds
  cp build-fuzz/fuzz/fuzz_* .device-fuzz/pack/
  for library in $(ldd build-fuzz/fuzz/fuzz_* | awk '/=> \// {print $3}' | sort -u); do
    case $(basename "$library") in libc.so*|libm.so*|libgcc_s*|libstdc++*) ;; *) cp -L "$library" .device-fuzz/pack/lib/ ;; esac
  done
  cp -r fuzz/seeds/* .device-fuzz/pack/seeds/
  mkdir -p .device-fuzz/pack/model .device-fuzz/pack/tiny-model
  cp tests/data/models/vit-char/*.json .device-fuzz/pack/model/
  cp fuzz/model/config.json .device-fuzz/pack/tiny-model/
  tar -C .device-fuzz/pack -cJf .device-fuzz/fuzz.tar.xz .
  rm -r .device-fuzz/pack
  du -sh .device-fuzz
  exit 0
fi
source scripts/device_env.sh
work=/tmp/fuzz-campaign
mkdir -p $work && tar -C $work -xJf .device-fuzz/fuzz.tar.xz
export LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
runs=${RUNS:-10000000}
targets=(${TARGETS:-request model_json image vocabulary safetensors torch_checkpoint})
jobs=$(nproc)
[ "${SIDE_BY_SIDE:-0}" = 1 ] && jobs=$(( $(nproc) / ${#targets[@]} ))
mkdir -p "$out/findings"
campaign() {  # one target: TARGET or TARGET:SECONDS
  local item=$1
  local target=${item%%:*} seconds=${SECONDS_PER_TARGET:-3000} start end length=()
  [ "$item" != "$target" ] && seconds=${item#*:}
  mkdir -p $work/corpus/$target $work/logs/$target
  export TROCR_FUZZ_MODEL_DIR=$work/model  # as fuzz/CMakeLists.txt sets it per target
  # the checkpoint targets: mutate the tiny model's seeds, not vit-char's 236 KB
  case $target in safetensors|torch_checkpoint) export TROCR_FUZZ_MODEL_DIR=$work/tiny-model; length=(-max_len=32768) ;; esac
  start=$(date +%s)
  (cd $work/logs/$target && timeout "$seconds" $work/fuzz_$target -jobs=$jobs -workers=$jobs \
     -runs=$(( (runs + jobs - 1) / jobs )) "${length[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
     -artifact_prefix=$out/findings/$target- $work/corpus/$target $work/seeds/$target > /dev/null 2>&1) || true
  end=$(date +%s)
  python3 - "$work/logs/$target" "$target" $((end - start)) "$work/corpus/$target" "$out" "$commit" $jobs <<'PY'
import glob, json, os, re, sys
logs, target, seconds, corpus, out, commit, cores = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
executions = cov = features = 0
findings = []
for path in glob.glob(os.path.join(logs, "fuzz-*.log")):
    text = open(path, errors="replace").read()
    found = re.findall(r"stat::number_of_executed_units: (\d+)", text)
    if found:
        executions += int(found[-1])
    else:  # a job that ended early: its last status line
        done = re.findall(r"#(\d+)\s", text)
        executions += int(done[-1]) if done else 0
    cov = max([cov] + [int(x) for x in re.findall(r"cov: (\d+)", text)])
    features = max([features] + [int(x) for x in re.findall(r"ft: (\d+)", text)])
    findings += re.findall(r"(ERROR: (?:AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^\n]*)", text)
    findings += re.findall(r"(runtime error:[^\n]*)", text)
record = {"target": target, "executions": executions, "seconds": seconds, "jobs": len(glob.glob(os.path.join(logs, "fuzz-*.log"))),
          "coverage_edges": cov, "features": features, "corpus_files": len(os.listdir(corpus)),
          "findings": sorted(set(findings)), "commit": commit, "cpu_cores": cores, "host_cores": os.cpu_count()}
print(json.dumps(record))
json.dump(record, open(os.path.join(out, f"fuzz-{target}.json"), "w"), indent=1)
PY
}
for item in "${targets[@]}"; do
  if [ "${SIDE_BY_SIDE:-0}" = 1 ]; then campaign "$item" & else campaign "$item"; fi
done
wait
python3 - "$out" <<'PY'
import glob, json, os, sys
parts = sorted(glob.glob(os.path.join(sys.argv[1], "fuzz-*.json")), key=os.path.getmtime)
path = os.path.join(sys.argv[1], "fuzz-campaign.json")
records = json.load(open(path)) if os.path.exists(path) else []
json.dump(records + [json.load(open(p)) for p in parts if p != path], open(path, "w"), indent=1)
for p in parts:
    if p != path: os.remove(p)
PY
# One archive: the device tool brings back a bounded number of files.
echo "findings: $(ls "$out/findings" | wc -l)"
tar -C "$out" -czf "$out/findings.tar.gz" findings && rm -r "$out/findings"

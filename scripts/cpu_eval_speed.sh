#!/usr/bin/env bash
# Here (or any CPU machine): `trocr eval -m models/demo data/synth-eval` on the CPU, this tree
# against a baseline commit (default dfa9d1e, the CPU engine before oneDNN), each built here
# without CUDA and run one after the other on the same cores; fp32 must give the same text on
# every line, and bf16 is reported beside it.
#   scripts/cpu_eval_speed.sh [BASELINE] [RESULT_PREFIX]
# Writes RESULT_PREFIX.json and .md (default bench/results/DATE-cpu-COMMIT-eval-speed).
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=${1:-dfa9d1e}
commit=$(git rev-parse --short HEAD)
prefix=${2:-bench/results/$(date +%F)-cpu-$commit-eval-speed}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/baseline" 2>/dev/null || true; rm -rf "$work"' EXIT

# The baseline's CPU engine used OpenBLAS.
dpkg-query -W -f='${Status}' libopenblas-dev 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev; }
git worktree add -q --detach "$work/baseline" "$baseline"
for tree in "$work/baseline" .; do
  cmake -S "$tree" -B "$tree/build-eval-speed" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROCR_CUDA=OFF \
    -DTROCR_TESTS=OFF > /dev/null
  cmake --build "$tree/build-eval-speed" -j"$(nproc)" --target trocr_cli > /dev/null
done

run() {  # NAME BINARY ARGS...
  local name=$1 binary=$2
  shift 2
  "$binary" eval --json --mistakes -m models/demo data/synth-eval "$@" > "$work/$name.json"
  echo "$name: $(grep -o '"images_per_s": [0-9.]*' "$work/$name.json")"
}
run baseline "$work/baseline/build-eval-speed/src/cli/trocr"
run fp32 build-eval-speed/src/cli/trocr
run bf16 build-eval-speed/src/cli/trocr --dtype bf16

/usr/bin/python3 - "$work" "$prefix" "$baseline" "$commit" <<'PY'
import json, os, platform, sys
work, prefix, baseline, commit = sys.argv[1:]
runs = {name: json.load(open(os.path.join(work, name + ".json"))) for name in ("baseline", "fp32", "bf16")}
texts = {name: {m["path"]: m["text"] for m in run["mistakes"]} for name, run in runs.items()}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
record = {"cpu": cpu, "cores": os.cpu_count(), "commit": commit, "baseline": baseline,
          "environment": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_"))},
          "runs": {name: {k: run[k] for k in ("images_per_s", "ms_per_image", "cer", "exact_lines", "images", "dtype")}
                   for name, run in runs.items()},
          "fp32_same_text_as_baseline": texts["fp32"] == texts["baseline"],
          "bf16_lines_differing_from_fp32": len(set(texts["bf16"].items()) ^ set(texts["fp32"].items()))}
record["fp32_speedup"] = runs["fp32"]["images_per_s"] / runs["baseline"]["images_per_s"]
record["bf16_speedup"] = runs["bf16"]["images_per_s"] / runs["baseline"]["images_per_s"]
json.dump(record, open(prefix + ".json", "w"), indent=1)
with open(prefix + ".md", "w") as f:
    f.write(f"# trocr eval -m models/demo data/synth-eval on the CPU ({cpu}, {os.cpu_count()} cores)\n\n")
    f.write(f"{commit} against {baseline}, built here without CUDA and run one after the other.\n\n")
    f.write("| build | dtype | images/s | ms/image | CER | exact lines | speed-up |\n|---|---|---|---|---|---|---|\n")
    for name, label in (("baseline", baseline), ("fp32", commit), ("bf16", commit)):
        r = runs[name]
        f.write(f"| {label} | {r['dtype']} | {r['images_per_s']:.1f} | {r['ms_per_image']:.1f} | {r['cer']:.4f} | "
                f"{r['exact_lines']}/{r['images']} | {r['images_per_s'] / runs['baseline']['images_per_s']:.2f}x |\n")
    f.write(f"\nfp32 gives the baseline's text on every line: {record['fp32_same_text_as_baseline']}. "
            f"bf16 lines whose text differs from fp32's: {record['bf16_lines_differing_from_fp32']}.\n")
print(open(prefix + ".md").read())
sys.exit(0 if record["fp32_same_text_as_baseline"] else 1)
PY

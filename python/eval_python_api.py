#!/usr/bin/env python3
"""The Python API on the demo set, against HF and against the CLI (scripts/device_python.sh).

For each dtype: trocr_rt.Recognizer.recognize_files over the dataset folder, every line's ids
compared with HF's (tests/data/demo/hf_synth_eval.json, the checkpoint's own settings), and the
images/s of the Python API against `trocr eval` with the same device, dtype and batch, in
alternating runs, each a fresh process, model loading untimed in both. A process's first
recognitions load CUDA modules and fill caches, which would dominate 400 lines on a GPU, so the
timed pass reads the dataset --passes times over (a `path<TAB>label` list for the CLI, the same
paths for Python). Writes JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import trocr_rt


def unpadded(ids, pad):
    ids = list(ids)
    while ids and ids[-1] == pad:
        ids.pop()
    return ids


def measure_once(arguments, dtype):
    """One timed pass in this process, printed as JSON for the parent."""
    recognizer = trocr_rt.Recognizer(arguments.model, device=arguments.device, dtype=dtype,
                                     batch_size=arguments.batch)
    paths = [line.split("\t")[0] for line in open(arguments.dataset, encoding="utf-8").read().splitlines()]
    started = time.perf_counter()
    results = list(recognizer.recognize_files(paths))
    seconds = time.perf_counter() - started
    first_pass = results[:len(paths) // arguments.passes]
    print(json.dumps({"images_per_s": len(results) / seconds, "pad": recognizer.generation["pad_token_id"],
                      "lines": [[os.path.basename(r.source), r.ids, r.text] for r in first_pass]}))


def python_run(arguments, dtype):
    command = [sys.executable, __file__, "--measure-once", dtype, "--model", arguments.model, "--dataset",
               arguments.dataset, "--device", arguments.device, "--batch", str(arguments.batch), "--passes",
               str(arguments.passes), "--json", "-"]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def cli_run(arguments, dtype):
    output = subprocess.run([arguments.cli, "eval", "-m", arguments.model, "--device", arguments.device, "--dtype",
                             dtype, "--batch", str(arguments.batch), "--json", arguments.dataset],
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output)["images_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/demo")
    parser.add_argument("--dataset", default="data/synth-eval")
    parser.add_argument("--hf", default="tests/data/demo/hf_synth_eval.json")
    parser.add_argument("--cli", default="build/src/cli/trocr")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="fp32,fp16")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=10, help="times the dataset is read in one timed run")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--json", required=True)
    parser.add_argument("--scratch", default="/tmp")
    parser.add_argument("--measure-once", metavar="DTYPE", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure_once:
        return measure_once(arguments, arguments.measure_once)
    # The dataset, --passes times over, as a list both sides read.
    folder = os.path.abspath(arguments.dataset)
    names = sorted(name for name in os.listdir(folder) if name.endswith(".jpg"))
    listing = os.path.join(arguments.scratch, "eval-list.tsv")
    with open(listing, "w", encoding="utf-8") as file:
        for _ in range(arguments.passes):
            for name in names:
                label = open(os.path.join(folder, name[:-4] + ".txt"), encoding="utf-8").read().strip()
                file.write(f"{os.path.join(folder, name)}\t{label}\n")
    arguments.dataset = listing
    hf = json.load(open(arguments.hf))["lines"]
    record = {"commit": arguments.commit, "device": arguments.device, "batch": arguments.batch,
              "passes": arguments.passes,
              "python": sys.version.split()[0], "trocr_rt": trocr_rt.__version__, "dtypes": {}}
    for dtype in arguments.dtypes.split(","):
        python_speeds, cli_speeds = [], []
        for _ in range(arguments.rounds):
            measured = python_run(arguments, dtype)
            python_speeds.append(measured["images_per_s"])
            cli_speeds.append(cli_run(arguments, dtype))
        lines, pad = measured["lines"], measured["pad"]
        identical_ids = sum(ids == unpadded(hf[name]["default"]["ids"], pad) for name, ids, _ in lines)
        identical_text = sum(text == hf[name]["default"]["text"] for name, _, text in lines)
        entry = {"lines": len(lines), "identical_ids_to_hf": identical_ids, "identical_text_to_hf": identical_text,
                 "python_images_per_s": python_speeds, "cli_images_per_s": cli_speeds,
                 "python_median": statistics.median(python_speeds), "cli_median": statistics.median(cli_speeds)}
        entry["python_overhead"] = entry["cli_median"] / entry["python_median"] - 1.0
        record["dtypes"][dtype] = entry
        print(f"{dtype}: {identical_ids}/{len(lines)} lines with HF's ids ({identical_text} same text); "
              f"Python {entry['python_median']:.1f} images/s, CLI {entry['cli_median']:.1f} images/s "
              f"(Python adds {100 * entry['python_overhead']:+.1f}%)")
    with open(arguments.json, "w") as file:
        json.dump(record, file, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The Python API on the demo set, against HF and against the CLI (scripts/device_python.sh).

For each dtype: trocr_rt.Recognizer.recognize_files over the dataset folder, every line's ids
compared with HF's (tests/data/demo/hf_synth_eval.json, the checkpoint's own settings), and the
images/s of the Python API against `trocr eval` with the same device, dtype and batch, in
alternating runs (each a fresh engine; model loading is not timed in either). Writes JSON.
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


def python_run(arguments, dtype):
    recognizer = trocr_rt.Recognizer(arguments.model, device=arguments.device, dtype=dtype,
                                     batch_size=arguments.batch)
    started = time.perf_counter()
    results = list(recognizer.recognize_files(arguments.dataset))
    seconds = time.perf_counter() - started
    return results, len(results) / seconds, recognizer.generation["pad_token_id"]


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
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--json", required=True)
    arguments = parser.parse_args()
    hf = json.load(open(arguments.hf))["lines"]
    record = {"commit": arguments.commit, "device": arguments.device, "batch": arguments.batch,
              "python": sys.version.split()[0], "trocr_rt": trocr_rt.__version__, "dtypes": {}}
    for dtype in arguments.dtypes.split(","):
        python_speeds, cli_speeds = [], []
        for _ in range(arguments.rounds):
            results, speed, pad = python_run(arguments, dtype)
            python_speeds.append(speed)
            cli_speeds.append(cli_run(arguments, dtype))
        names = [os.path.basename(result.source) for result in results]
        identical_ids = sum(result.ids == unpadded(hf[name]["default"]["ids"], pad) for name, result in zip(names, results))
        identical_text = sum(result.text == hf[name]["default"]["text"] for name, result in zip(names, results))
        entry = {"lines": len(results), "identical_ids_to_hf": identical_ids, "identical_text_to_hf": identical_text,
                 "python_images_per_s": python_speeds, "cli_images_per_s": cli_speeds,
                 "python_median": statistics.median(python_speeds), "cli_median": statistics.median(cli_speeds)}
        entry["python_overhead"] = entry["cli_median"] / entry["python_median"] - 1.0
        record["dtypes"][dtype] = entry
        print(f"{dtype}: {identical_ids}/{len(results)} lines with HF's ids ({identical_text} same text); "
              f"Python {entry['python_median']:.1f} images/s, CLI {entry['cli_median']:.1f} images/s "
              f"(Python adds {100 * entry['python_overhead']:+.1f}%)")
    with open(arguments.json, "w") as file:
        json.dump(record, file, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Turns the records of scripts/device_accuracy.sh (`trocr compare` against HF fp32) into a
markdown table beside them.

Usage: bench/accuracy_table.py bench/results/NAME-accuracy.json  ->  NAME-accuracy.md
"""
import json
import sys


def main(path):
    records = json.load(open(path))
    first = records[0]
    lines = [f"# Error statistics against HF fp32 ({first['gpu']}, trocr-rt {first['commit']}, "
             f"HF transformers {first['reference']['transformers']}, torch {first['reference']['torch']})", "",
             "Absolute error |ours - HF|; relative error |ours - HF| / max(|HF|, 1% of HF's RMS). Encoder "
             "output: the encoder's last_hidden_state; logits: teacher-forced on HF's greedy ids. "
             "Identical: generated sequences (at most 20 new tokens) equal to HF fp32's.", "",
             "| model | weights | engine | dtype | images | tensor | abs max | abs mean | abs median "
             "| rel max | rel mean | rel median | identical greedy | identical beam 4 (trocr-chinese) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {"trocr-base": 0, "trocr-small": 1, "demo": 2}
    dtypes = {"fp32": 0, "fp16": 1, "bf16": 2, "fp8": 3}
    for r in sorted(records, key=lambda r: (order.get(r["model"], 9), r["device"], dtypes[r["dtype"]])):
        same = r["identical_sequences"]
        for tensor in ("encoder_output", "logits"):
            s = r[tensor]
            identical = (f"{same['greedy']['identical']}/{same['greedy']['sequences']} | "
                         f"{same['beam4_chinese']['identical']}/{same['beam4_chinese']['sequences']}"
                         if tensor == "encoder_output" else " | ")
            lines.append(f"| {r['model']} | {r['weights']} | {r['device']} | {r['dtype']} | {r['images']} | "
                         f"{tensor.replace('_', ' ')} | {s['max_abs']:.2e} | {s['mean_abs']:.2e} | "
                         f"{s['median_abs']:.2e} | {s['max_rel']:.2e} | {s['mean_rel']:.2e} | "
                         f"{s['median_rel']:.2e} | {identical} |")
    out = path[:-len(".json")] + ".md"
    open(out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/python3
"""Turns the records of one benchmark run (scripts/device_bench.sh) into bench/results/.

Usage: bench/summarize.py RECORDS.json NAME  ->  bench/results/NAME.json and NAME.md
The markdown table gives, per model, batch and beams, each engine's ms per batch and images/s,
and trocr-rt's speed-up over HF eager fp16 and fp32 measured in the same run.
"""
import json
import os
import sys


def main(records_path, name):
    records = json.load(open(records_path))
    here = os.path.dirname(os.path.abspath(__file__))
    out_json = os.path.join(here, "results", name + ".json")
    json.dump(records, open(out_json, "w"), indent=1)
    hf = {(r["model"], r["dtype"], r["batch"], r["beams"], r.get("settings", "plain")): r
          for r in records if r["engine"] == "hf-eager"}
    ours = [r for r in records if r["engine"] == "trocr-rt"]
    gpu = records[0]["gpu"] if records else "?"
    commits = sorted({r.get("commit", "?") for r in ours})
    versions = sorted({(r.get("torch"), r.get("transformers")) for r in records if r["engine"] == "hf-eager"})
    lines = [f"# Benchmark {name}", "",
             f"GPU: {gpu}. trocr-rt commit(s): {', '.join(commits)}. HF: "
             + ", ".join(f"torch {t}, transformers {v}" for t, v in versions) + ".",
             "Random-weight models with the real shapes (python/make_full_models.py); exactly 20 "
             "generated tokens; medians of the timed repeats after warm-up. trocr-rt is timed "
             "from host pixels to host ids; HF from pixels on the GPU to generate()'s output.", "",
             "| model | settings | beams | batch | trocr-rt fp16 ms | bf16 ms | fp32 ms | fp16 images/s "
             "| HF fp16 ms | HF fp32 ms | speed-up vs HF fp16 | vs HF fp32 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["model"], r.get("settings", "plain"), r["beams"], r["batch"]) for r in ours})
    for model, settings, beams, batch in keys:
        def ours_ms(dtype):
            for r in ours:
                if (r["model"], r.get("settings", "plain"), r["beams"], r["batch"], r["dtype"]) == \
                        (model, settings, beams, batch, dtype):
                    return r["ms_per_batch"]
            return None
        fp16, bf16, fp32 = ours_ms("fp16"), ours_ms("bf16"), ours_ms("fp32")
        hf16 = hf.get((model, "fp16", batch, beams, settings))
        hf32 = hf.get((model, "fp32", batch, beams, settings))
        fmt = lambda v: f"{v:.2f}" if v is not None else "-"
        ratio = lambda h, o: f"{h['ms_per_batch'] / o:.1f}x" if h and o else "-"
        lines.append(f"| {model} | {settings} | {beams} | {batch} | {fmt(fp16)} | {fmt(bf16)} | {fmt(fp32)} | "
                     f"{fmt(batch * 1000 / fp16) if fp16 else '-'} | "
                     f"{fmt(hf16['ms_per_batch']) if hf16 else '-'} | {fmt(hf32['ms_per_batch']) if hf32 else '-'} | "
                     f"{ratio(hf16, fp16)} | {ratio(hf32, fp16)} |")
    open(os.path.join(here, "results", name + ".md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

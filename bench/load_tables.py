#!/usr/bin/python3
"""Markdown tables for the records of scripts/device_serve_bench.sh (the service under load and
its soak run) and of scripts/device_cpu_bench.sh (the CPU engines against HF eager).

Usage: bench/load_tables.py bench/results/NAME-serve.json bench/results/NAME-cpu.json ...
writes NAME-serve.md and NAME-cpu.md beside them.
"""
import json
import sys


def serve_table(path):
    records = json.load(open(path))
    first = records[0]
    lines = [f"# trocr serve under load ({first['gpu']}, commit {first['commit']}, {first['dtype']})", "",
             "Closed-loop clients on loopback (`trocr load-test`), one image (data/samples/date.jpg) per "
             "request, each client over one keep-alive connection; the checkpoint's generation settings "
             "(demo: beam 4, max_length 32; trocr-base shape with random weights: HF defaults, greedy, max_length 20); "
             "`--max-wait-ms 2`.", "",
             "| model | clients | seconds | requests | images/s | p50 ms | p90 ms | p99 ms | statuses |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['name']} | {r['concurrency']} | {r['seconds']:.0f} | {r['ok_requests']} | "
                     f"{r['images_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{json.dumps(r.get('statuses', {}))} |")
    for r in records:
        if "server_memory" in r:
            rss = [m["resident_bytes"] / 2**20 for m in r["server_memory"]]
            lines += ["", f"Soak ({r['name']}, {r['concurrency']} clients, {r['seconds']:.0f} s): server resident "
                      f"memory every 10 s (MiB): {', '.join(f'{x:.0f}' for x in rss)}; GPU memory used (MiB): "
                      f"{', '.join(str(x) for x in r.get('gpu_memory_used_mib', []))}."]
    return lines


def cpu_table(path):
    records = json.load(open(path))
    cores = records[0].get("cpu_cores", "?")
    commit = next((r["commit"] for r in records if r["engine"] == "trocr-rt"), "?")
    repeats = next((r.get("repeats", "?") for r in records if r["engine"] == "trocr-rt"), "?")
    ours = {(r["model"], r["batch"], r["beams"], r["dtype"]): r["ms_per_batch"] for r in records if r["engine"] == "trocr-rt"}
    hf = {(r["model"], r["batch"], r["beams"]): r["ms_per_batch"] for r in records if r["engine"] == "hf-eager"}
    dtypes = sorted({key[3] for key in ours}, key=lambda d: d != "fp32")
    lines = [f"# CPU engines, {cores} cores of the GPU machine (trocr-rt commit {commit})", "",
             f"Exactly 20 generated tokens, random pixels, medians of {repeats} runs after warm-up; HF eager is fp32.", "",
             "| model | batch | beams | " + " | ".join(f"trocr-rt {d} ms" for d in dtypes) + " | HF eager ms | "
             + " | ".join(f"HF / trocr-rt {d}" for d in dtypes) + " |",
             "|" + "---|" * (4 + 2 * len(dtypes))]
    for model, batch, beams in sorted({key[:3] for key in ours}):
        times = [ours.get((model, batch, beams, d)) for d in dtypes]
        reference = hf.get((model, batch, beams))
        cells = [f"{t:.1f}" if t else "-" for t in times] + [f"{reference:.1f}" if reference else "-"]
        cells += [f"{reference / t:.2f}x" if reference and t else "-" for t in times]
        lines.append(f"| {model} | {batch} | {beams} | " + " | ".join(cells) + " |")
    return lines


def main(*paths):
    tables = [(path, cpu_table(path) if path.endswith("-cpu.json") else serve_table(path)) for path in paths]
    for path, lines in tables:
        open(path[:-len(".json")] + ".md", "w").write("\n".join(lines) + "\n")
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])

#!/usr/bin/python3
"""Markdown tables for the records of scripts/device_serve_bench.sh: the service under load
(and its soak run), and the CPU engines.

Usage: bench/load_tables.py bench/results/NAME-serve.json [bench/results/NAME-cpu.json]
writes NAME-serve.md (and NAME-cpu.md) beside them.
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
    lines = [f"# CPU engines, fp32, {cores} cores of the GPU machine (trocr-rt commit {commit})", "",
             "Exactly 20 generated tokens, random pixels, medians of 3 runs after 1 warm-up.", "",
             "| model | batch | beams | trocr-rt ms | HF eager ms | HF / trocr-rt |", "|---|---|---|---|---|---|"]
    ours = {(r["model"], r["batch"], r["beams"]): r for r in records if r["engine"] == "trocr-rt"}
    hf = {(r["model"], r["batch"], r["beams"]): r for r in records if r["engine"] == "hf-eager"}
    for key in sorted(ours):
        o, h = ours[key], hf.get(key)
        ratio = f"{h['ms_per_batch'] / o['ms_per_batch']:.2f}x" if h else "-"
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {o['ms_per_batch']:.1f} | "
                     f"{h['ms_per_batch']:.1f} | {ratio} |" if h else f"| {key[0]} | {key[1]} | {key[2]} | "
                     f"{o['ms_per_batch']:.1f} | - | - |")
    return lines


def main(serve_path, cpu_path=None):
    tables = [(serve_path, serve_table(serve_path))]
    if cpu_path:
        tables.append((cpu_path, cpu_table(cpu_path)))
    for path, lines in tables:
        open(path[:-len(".json")] + ".md", "w").write("\n".join(lines) + "\n")
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])

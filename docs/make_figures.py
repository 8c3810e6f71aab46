#!/usr/bin/python3
"""Draws docs/REPORT.md's figures from the committed results in bench/results/.

    /usr/bin/python3 docs/make_figures.py      (Debian's python3-matplotlib: setup.sh --dev)

Figures: latency and throughput against batch size (trocr-rt fp16/bf16/fp32 and HF eager
fp16/fp32, greedy and beam 4, both model shapes), and the service's throughput and latency
against concurrency.
"""
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "..", "bench", "results")
FIGURES = os.path.join(HERE, "figures")
BENCH = "2026-11-24-h100-a48a361.json"
SERVE = "2026-11-24-h100-21dd61d-serve.json"

STYLES = {("trocr-rt", "fp16"): ("tab:blue", "-", "o"), ("trocr-rt", "bf16"): ("tab:cyan", "-", "s"),
          ("trocr-rt", "fp32"): ("tab:green", "-", "^"), ("hf-eager", "fp16"): ("tab:red", "--", "o"),
          ("hf-eager", "fp32"): ("tab:orange", "--", "^")}


def series(records, engine, dtype, model, beams):
    rows = sorted((r["batch"], r) for r in records
                  if (r["engine"], r["dtype"], r["model"], r["beams"], r.get("settings", "plain"))
                  == (engine, dtype, model, beams, "plain"))
    return [b for b, _ in rows], [r for _, r in rows]


def batch_figure(records, key, ylabel, title, filename, log_y):
    figure, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for column, model in enumerate(["trocr-base", "trocr-small"]):
        for row, beams in enumerate([1, 4]):
            axis = axes[row][column]
            for (engine, dtype), (color, line, marker) in STYLES.items():
                batches, rows = series(records, engine, dtype, model, beams)
                if batches:
                    axis.plot(batches, [r[key] for r in rows], color=color, linestyle=line, marker=marker,
                              label=f"{engine} {dtype}")
            axis.set_xscale("log", base=2)
            if log_y:
                axis.set_yscale("log")
            axis.set_title(f"{model}, {'greedy' if beams == 1 else 'beam 4'}, 20 tokens")
            axis.set_xlabel("batch size")
            axis.set_ylabel(ylabel)
            axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(os.path.join(FIGURES, filename), dpi=110)
    plt.close(figure)


def serve_figure(records):
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, color in [("demo", "tab:blue"), ("trocr-base", "tab:purple")]:
        rows = sorted((r["concurrency"], r) for r in records if r["name"] == name)
        if not rows:
            continue
        levels = [c for c, _ in rows]
        left.plot(levels, [r["images_per_s"] for _, r in rows], color=color, marker="o", label=name)
        right.plot(levels, [r["p50_ms"] for _, r in rows], color=color, marker="o", label=f"{name} p50")
        right.plot(levels, [r["p99_ms"] for _, r in rows], color=color, marker="x", linestyle="--",
                   label=f"{name} p99")
    for axis, label in [(left, "images/s"), (right, "latency (ms)")]:
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients (one image per request)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    right.set_yscale("log")
    figure.suptitle("trocr serve on loopback, fp16, dynamic batching (max wait 2 ms)")
    figure.tight_layout()
    figure.savefig(os.path.join(FIGURES, "serve.png"), dpi=110)
    plt.close(figure)


def main():
    os.makedirs(FIGURES, exist_ok=True)
    records = json.load(open(os.path.join(RESULTS, BENCH)))
    batch_figure(records, "ms_per_batch", "ms per batch (median)", "Latency against batch size (H100)",
                 "latency.png", log_y=True)
    batch_figure(records, "images_per_s", "images/s", "Throughput against batch size (H100)",
                 "throughput.png", log_y=False)
    serve_path = os.path.join(RESULTS, SERVE)
    if os.path.exists(serve_path):
        serve_figure(json.load(open(serve_path)))
    print("figures in", FIGURES, sorted(os.listdir(FIGURES)))


if __name__ == "__main__":
    main()

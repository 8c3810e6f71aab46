#!/usr/bin/env python3
"""Compares two commits' `trocr bench` records from one run (scripts/device_compare_binaries.sh):
per model, batch and beam count, the median over rounds of each round's median, and the new
commit's time as a ratio of the base's. Prints a markdown table; exits 1 when a setting is
slower than the base by more than --limit (default 3%).

usage: compare_binaries.py RECORDS_JSON[,RECORDS_JSON...] BASE_COMMIT NEW_COMMIT[,NEW_COMMIT...] [--limit 0.03]
Several record files and new commits pool their rounds (commits whose code for the compared
settings is the same).
"""
import argparse
import json
import statistics
from collections import defaultdict


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("records")
    parser.add_argument("base")
    parser.add_argument("new")
    parser.add_argument("--limit", type=float, default=0.03)
    args = parser.parse_args()
    times = defaultdict(list)
    new_commits = args.new.split(",")
    for path in args.records.split(","):
        for record in json.load(open(path)):
            key = (record["model"], record["beams"], record["batch"])
            commit = args.new if record["commit"] in new_commits else record["commit"]
            times[(commit, key)].append(record["ms_per_batch"])
    keys = sorted({key for _, key in times})
    worst = 0.0
    print(f"| model | beams | batch | {args.base} ms (rounds) | {args.new} ms (rounds) | {args.new} / {args.base} |")
    print("|---|---|---|---|---|---|")
    for key in keys:
        base, new = times[(args.base, key)], times[(args.new, key)]
        base_median, new_median = statistics.median(base), statistics.median(new)
        ratio = new_median / base_median
        worst = max(worst, ratio)
        flag = " **slower**" if ratio > 1 + args.limit else ""
        print(f"| {key[0]} | {key[1]} | {key[2]} | {base_median:.2f} ({len(base)}) | {new_median:.2f} ({len(new)}) | "
              f"{ratio:.3f}{flag} |")
    print(f"\nworst ratio {worst:.3f}; limit {1 + args.limit:.2f}")
    return 0 if worst <= 1 + args.limit else 1


if __name__ == "__main__":
    raise SystemExit(main())

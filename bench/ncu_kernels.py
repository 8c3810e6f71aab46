#!/usr/bin/env python3
"""Per-kernel GPU time from Nsight Compute's text report (gpu__time_duration.sum).

  ncu_kernels.py REPORT            time per kernel name: sum, share, count, mean
  ncu_kernels.py BASE NEW          two reports side by side, largest differences first
"""
import re
import sys

UNITS = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def kernel_times(path):
    """{kernel name: (total microseconds, launches)} over every profiled launch in the report."""
    kernels, name = {}, None
    for line in open(path, errors="replace"):
        if line.startswith("  ") and not line.startswith("    ") and "Context" in line:
            name = re.sub(r"\(.*", "", line.strip().split(" (")[0])[:90]
        match = re.match(r"\s+gpu__time_duration.sum\s+(\S+)\s+([\d.,]+)", line)
        if match and name:
            total, count = kernels.get(name, (0.0, 0))
            microseconds = float(match.group(2).replace(",", "")) * UNITS.get(match.group(1), 1.0)
            kernels[name] = (total + microseconds, count + 1)
    return kernels


def summary(path):
    kernels = kernel_times(path)
    grand = sum(total for total, _ in kernels.values()) or 1.0
    print(f"{'us total':>10} {'share':>6} {'count':>6} {'us mean':>8}  kernel")
    for name, (total, count) in sorted(kernels.items(), key=lambda item: -item[1][0]):
        print(f"{total:10.1f} {100 * total / grand:5.1f}% {count:6d} {total / count:8.2f}  {name}")


def comparison(base_path, new_path):
    base, new = kernel_times(base_path), kernel_times(new_path)
    rows = []
    for name in set(base) | set(new):
        base_total, base_count = base.get(name, (0.0, 0))
        new_total, new_count = new.get(name, (0.0, 0))
        rows.append((new_total - base_total, name, base_total, base_count, new_total, new_count))
    print(f"{'base us':>9} {'count':>5} {'new us':>9} {'count':>5} {'new-base':>9}  kernel")
    for difference, name, base_total, base_count, new_total, new_count in sorted(rows, key=lambda r: -abs(r[0])):
        print(f"{base_total:9.1f} {base_count:5d} {new_total:9.1f} {new_count:5d} {difference:+9.1f}  {name}")
    base_sum = sum(t for t, _ in base.values())
    new_sum = sum(t for t, _ in new.values())
    print(f"{base_sum:9.1f} {sum(c for _, c in base.values()):5d} {new_sum:9.1f} "
          f"{sum(c for _, c in new.values()):5d} {new_sum - base_sum:+9.1f}  (all kernels)")


if __name__ == "__main__":
    if len(sys.argv) == 2:
        summary(sys.argv[1])
    elif len(sys.argv) == 3:
        comparison(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)

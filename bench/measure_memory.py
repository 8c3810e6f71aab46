#!/usr/bin/env python3
"""Runs a command and reports its peak host RSS (the kernel's, from wait4), its typical host RSS
(the median of /proc's VmRSS polled every 20 ms: for a command that mostly computes, what it holds
while it runs) and its peak GPU memory (nvidia-smi's per-process figure, polled likewise; it
includes the CUDA context).

usage: measure_memory.py LABEL JSON_OUT -- COMMAND...
Appends {"label", "peak_rss_mib", "median_rss_mib", "peak_gpu_mib", "exit_status", "command"} to the
JSON list in JSON_OUT, and exits with the command's exit status.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time


def gpu_memory_mib(pid):
    if shutil.which("nvidia-smi") is None:  # a machine without NVIDIA's driver: no GPU memory
        return 0
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    for line in subprocess.run(query, capture_output=True, text=True).stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 2 and fields[0] == str(pid):
            return int(fields[1])
    return 0


def rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def main():
    label, target = sys.argv[1], sys.argv[2]
    command = sys.argv[sys.argv.index("--") + 1:]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak_gpu = 0
    samples = []
    done = threading.Event()

    def poll():
        nonlocal peak_gpu
        while not done.is_set():
            peak_gpu = max(peak_gpu, gpu_memory_mib(process.pid))
            rss = rss_mib(process.pid)
            if rss:
                samples.append(rss)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    poller.join()
    record = {"label": label, "peak_rss_mib": round(usage.ru_maxrss / 1024.0, 1),
              "median_rss_mib": round(statistics.median(samples), 1) if samples else None, "peak_gpu_mib": peak_gpu,
              "exit_status": os.waitstatus_to_exitcode(status), "command": " ".join(command)}
    records = json.load(open(target)) if os.path.exists(target) else []
    records.append(record)
    json.dump(records, open(target, "w"), indent=1)
    print(f"{label}: peak RSS {record['peak_rss_mib']} MiB, median RSS {record['median_rss_mib']} MiB, "
          f"peak GPU {peak_gpu} MiB, exit {record['exit_status']}")
    return record["exit_status"]


if __name__ == "__main__":
    sys.exit(main())

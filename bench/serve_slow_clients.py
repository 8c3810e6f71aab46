#!/usr/bin/python3
"""The HTTP layer under slow clients, for choosing one by measurement: `trocr serve` binaries on
the CPU engine with the golden model, each given N idle-or-trickling connections (half send
nothing, half a partial header, a byte every 100 ms), then timed on 300 /healthz probes (a new
connection each) and on recognition requests from closed-loop clients.

    serve_slow_clients.py --binary NAME=PATH [--binary ...] --json OUT.json
"""
import argparse
import http.client
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "tests", "data", "models", "vit-char")
PNG = open(os.path.join(ROOT, "tests", "data", "images", "tiny.png"), "rb").read()


def start(binary, extra):
    process = subprocess.Popen([binary, "serve", "-m", MODEL, "--port", "0", "--threads", "1", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = int(re.search(r"127\.0\.0\.1:(\d+)", process.stdout.readline()).group(1))
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{binary} did not become ready")


def probe(port, timeout):
    start = time.perf_counter()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", "/healthz")
        ok = connection.getresponse().status == 200
        connection.close()
    except OSError:
        ok = False
    return (time.perf_counter() - start) * 1000, ok


def recognition_rate(port, clients, seconds):
    counts, latencies, lock, stop = [0, 0], [], threading.Lock(), threading.Event()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            start = time.perf_counter()
            try:
                connection.request("POST", "/v1/recognize", PNG, {"Content-Type": "image/png"})
                ok = connection.getresponse().read() and True
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                counts[0 if ok else 1] += 1
                latencies.append((time.perf_counter() - start) * 1000)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"requests_per_s": counts[0] / seconds, "failed": counts[1],
            "p50_ms": latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": latencies[int(0.99 * len(latencies)) - 1] if latencies else None}


def measure(name, binary, extra, slow_counts):
    records = []
    for slow in slow_counts:
        process, port = start(binary, extra)
        sockets = []
        for i in range(slow):
            sock = socket.socket()
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", port))
                if i % 2:
                    sock.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            except OSError:
                pass
            sockets.append((sock, bool(i % 2)))
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.1):
                for sock, trickling in sockets:
                    if trickling:
                        try:
                            sock.send(b"a")
                        except OSError:
                            pass
        thread = threading.Thread(target=trickle)
        thread.start()
        time.sleep(0.5)
        probes, began = [], time.time()
        while len(probes) < 300 and time.time() - began < 30:  # a starved server: 30 s of probes
            probes.append(probe(port, 3))
        times = sorted(ms for ms, _ in probes)
        rate = recognition_rate(port, 16, 5)
        stop.set()
        thread.join()
        for sock, _ in sockets:
            sock.close()
        process.terminate()
        process.wait(timeout=60)
        record = {"layer": name, "slow_connections": slow, "healthz_probes": len(probes),
                  "healthz_failed": sum(not ok for _, ok in probes),
                  "healthz_p50_ms": statistics.median(times), "healthz_p99_ms": times[int(0.99 * len(times)) - 1],
                  "recognize_16_clients": rate}
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", action="append", required=True, help="NAME=PATH[,extra serve flags]")
    parser.add_argument("--slow", default="0,64,1000")
    parser.add_argument("--json", required=True)
    arguments = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    records = []
    for item in arguments.binary:
        name, rest = item.split("=", 1)
        binary, *extra = rest.split(",")
        records += measure(name, binary, extra, [int(n) for n in arguments.slow.split(",")])
    json.dump(records, open(arguments.json, "w"), indent=1)


if __name__ == "__main__":
    main()

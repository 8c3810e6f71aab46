#!/usr/bin/python3
"""`trocr serve`, end to end on the CPU engine with the HF golden model: real answers (HF's
text from golden.json), dynamic batching, 4xx for bad requests, 503 on a full queue, metrics,
and a graceful SIGTERM that still answers the request in flight.

    serve_checks.py TROCR_BINARY MODEL_DIR IMAGES_DIR
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

TROCR, MODEL, IMAGES = sys.argv[1:4]
GOLDEN = json.load(open(os.path.join(MODEL, "golden.json"), encoding="utf-8"))
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def expected_text(name):
    return GOLDEN["images"][name]["generate"]["checkpoint_default"]["text"][0]  # best candidate


def image_bytes(name):
    with open(os.path.join(IMAGES, name), "rb") as f:
        return f.read()


def request(port, method, path, body=None, headers=None, timeout=60):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, payload


def multipart(files):
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def recognize(port, files):
    body, headers = multipart(files)
    status, payload = request(port, "POST", "/v1/recognize", body, headers)
    return status, json.loads(payload)


def main():
    server = subprocess.Popen(
        [TROCR, "serve", "-m", MODEL, "--port", "0", "--max-batch", "4", "--max-wait-ms", "1000",
         "--queue-size", "4", "--max-images-per-request", "3", "--max-request-mb", "1", "--access-log", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not match:
            print("server did not start:", line, server.stdout.read())
            sys.exit(1)
        port = int(match.group(1))
        check(request(port, "GET", "/healthz")[0] == 200, "/healthz answers 200 while the model loads")
        deadline = time.time() + 60
        while request(port, "GET", "/readyz")[0] != 200 and time.time() < deadline:
            time.sleep(0.05)
        run_checks(port, server)
    finally:
        if server.poll() is None:
            server.kill()
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


def run_checks(port, server):
    check(request(port, "GET", "/readyz")[0] == 200, "/readyz answers 200 once the model is loaded")

    status, payload = request(port, "POST", "/v1/recognize", image_bytes("line_rgb.png"), {"Content-Type": "image/png"})
    result = json.loads(payload)["results"][0] if status == 200 else {}
    check(status == 200 and result.get("text") == expected_text("line_rgb.png"),
          f"a raw image/png body is read as HF reads it ({result.get('text')!r})")
    check(0 < result.get("confidence", 0) <= 1 and "queue" in result.get("timings_ms", {}),
          "the answer has a confidence and timings")

    names = ["wide.jpg", "line_gray.png"]
    status, payload = recognize(port, [(n, image_bytes(n)) for n in names])
    texts = [r["text"] for r in payload.get("results", [])]
    check(status == 200 and texts == [expected_text(n) for n in names], "a multipart request with two images, in order")

    # Dynamic batching: three clients at once, each with another image, share one engine batch,
    # and each gets its own image's text back.
    answers = {}
    concurrent = ["line_rgb.png", "tiny.png", "palette.png"]
    def one_client(name):
        answers[name] = recognize(port, [(name, image_bytes(name))])
    clients = [threading.Thread(target=one_client, args=(name,)) for name in concurrent]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    sizes = [answers[n][1]["results"][0]["batch_size"] for n in concurrent if answers.get(n, (0,))[0] == 200]
    check(len(sizes) == 3 and max(sizes) >= 2, f"concurrent requests are batched together (batch sizes {sizes})")
    for name in concurrent:
        status, payload = answers.get(name, (0, {}))
        texts = [r["text"] for r in payload.get("results", [])]
        check(status == 200 and texts == [expected_text(name)], f"a concurrent client gets its own image's text ({name}: {texts})")

    png = image_bytes("line_rgb.png")
    bad_requests = [
        ("text/plain body", b"hello", {"Content-Type": "text/plain"}, 415),
        ("no Content-Type", png, {}, 415),
        ("bytes that are no image", b"\x00" * 100, {"Content-Type": "image/png"}, 400),
        ("a truncated PNG", png[:len(png) // 2], {"Content-Type": "image/png"}, 400),
        ("an empty body", b"", {"Content-Type": "image/jpeg"}, 400),
        ("a body over --max-request-mb", b"\x89PNG" + b"\x00" * (1 << 21), {"Content-Type": "image/png"}, 413),
    ]
    for what, body, headers, expected in bad_requests:
        status, payload = request(port, "POST", "/v1/recognize", body, headers)
        message = json.loads(payload).get("error", "") if payload.startswith(b"{") else ""
        check(status == expected and message, f"{what}: {status} (expected {expected}) {message!r}")
    status, payload = recognize(port, [("line_rgb.png", png)] * 4)
    check(status == 413 and "at most 3" in payload.get("error", ""), f"too many images: {status} {payload}")
    status, _ = request(port, "GET", "/v1/nothing-here")
    check(status == 404, "an unknown path: 404")

    # A full queue: three images wait (up to 1 s) for a fourth; two more do not fit in 4.
    waiting = []
    queued = ["noise_rgba.png", "wide.jpg", "line_gray.png"]
    first = threading.Thread(target=lambda: waiting.append(recognize(port, [(n, image_bytes(n)) for n in queued])))
    first.start()
    time.sleep(0.3)
    status, payload = recognize(port, [("line_rgb.png", png)] * 2)
    first.join()
    check(status == 503 and "queue is full" in payload.get("error", ""), f"a full queue answers 503: {status} {payload}")
    texts = [r["text"] for r in waiting[0][1].get("results", [])] if waiting else []
    check(waiting and waiting[0][0] == 200 and texts == [expected_text(n) for n in queued],
          f"the queued request is still answered, each image with its text, in order ({texts})")

    status, payload = request(port, "GET", "/metrics")
    metrics = payload.decode()
    for needle in ['trocr_requests_total{code="200"}', 'trocr_requests_total{code="415"}',
                   'trocr_requests_total{code="503"}', "trocr_batch_size_bucket", "trocr_queue_seconds_count",
                   "trocr_request_seconds_bucket", "trocr_images_total", "process_resident_memory_bytes"]:
        check(needle in metrics, f"/metrics exposes {needle}")
    images = re.search(r"^trocr_images_total (\d+)", metrics, re.M)
    check(images and int(images.group(1)) == 1 + 2 + 3 + 3, "trocr_images_total counts the recognized images")
    on_cpu = re.search(r'^trocr_device_images_total\{device="cpu"\} (\d+)', metrics, re.M)
    check(on_cpu and int(on_cpu.group(1)) == int(images.group(1)), "trocr_device_images_total gives the CPU engine every image")

    # Graceful shutdown: requests waiting for their batch are answered after SIGTERM, each with
    # its own image's text.
    in_flight = {}
    at_shutdown = ["wide.jpg", "tiny.png"]
    def waiting_client(name):
        in_flight[name] = recognize(port, [(name, image_bytes(name))])
    clients = [threading.Thread(target=waiting_client, args=(name,)) for name in at_shutdown]
    for client in clients:
        client.start()
    time.sleep(0.3)
    server.send_signal(signal.SIGTERM)
    for client in clients:
        client.join()
    for name in at_shutdown:
        status, payload = in_flight.get(name, (0, {}))
        texts = [r["text"] for r in payload.get("results", [])]
        check(status == 200 and texts == [expected_text(name)],
              f"a request in flight at SIGTERM is answered with its text ({name}: {texts})")
    try:
        code = server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = None
    output = server.stdout.read()
    check(code == 0 and "stopped" in output, f"the server exits 0 after SIGTERM (code {code})")


if __name__ == "__main__":
    main()

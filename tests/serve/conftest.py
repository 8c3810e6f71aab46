"""Fixtures of the server's integration tests: `trocr serve` on the CPU engine with the golden
model (HF's outputs in golden.json are the oracle), started with the flags a test needs, its
standard output (the access log) collected as it runs."""
import ast
import base64
import contextlib
import http.client
import json
import os
import re
import resource
import socket
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "tests", "data", "models", "vit-char")
IMAGES = os.path.join(ROOT, "tests", "data", "images")
GOLDEN = json.load(open(os.path.join(MODEL, "golden.json"), encoding="utf-8"))

# Sockets for the chaos tests' thousand connections.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))


def generate_cases():
    """python/make_goldens.py's GENERATE_CASES: the HF settings each golden text was made with."""
    tree = ast.parse(open(os.path.join(ROOT, "python", "make_goldens.py"), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "GENERATE_CASES":
            return {key.value: {k.arg: ast.literal_eval(k.value) for k in value.keywords}
                    for key, value in zip(node.value.keys, node.value.values)}
    raise AssertionError("no GENERATE_CASES in make_goldens.py")


def expected_text(name, case="checkpoint_default"):
    return GOLDEN["images"][name]["generate"][case]["text"][0]


def image_bytes(name):
    with open(os.path.join(IMAGES, name), "rb") as file:
        return file.read()


def image_base64(name):
    return base64.b64encode(image_bytes(name)).decode()


class Server:
    """A running `trocr serve`; `lines` holds its standard output so far."""

    def __init__(self, cli, *flags, port=0, wait_ready=True, model=MODEL):
        self.process = subprocess.Popen([cli, "serve", "-m", model, "--port", str(port), "--threads", "1", *flags],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        first = self.process.stdout.readline()
        self.lines.append(first)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", first)
        if not match:
            self.process.kill()
            raise AssertionError(f"trocr serve did not start: {first}{self.process.stdout.read()}")
        self.port = int(match.group(1))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_ready()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                if self.request("GET", "/readyz", timeout=2)[0] == 200:
                    return
            time.sleep(0.02)
        raise AssertionError("trocr serve did not become ready")

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, parsed JSON or text, response headers) over a new connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        kind = response.getheader("Content-Type", "")
        data = json.loads(payload) if kind.startswith("application/json") and payload else payload.decode("utf-8", "replace")
        return response.status, data, response

    def post_json(self, path, document, headers=None):
        return self.request("POST", path, json.dumps(document).encode(),
                            {"Content-Type": "application/json", **(headers or {})})

    def metric(self, name):
        text = self.request("GET", "/metrics")[1]
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else None

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.reader.join(timeout=5)


@contextlib.contextmanager
def serving(cli, *flags, **options):
    server = Server(cli, *flags, **options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(cli):
    with serving(cli, "--max-batch", "4", "--max-wait-ms", "20", "--max-images-per-request", "8",
                 "--request-max-beams", "5", "--request-max-new-tokens", "30") as running:
        yield running


def multipart(parts):
    """parts: (field, filename or None, bytes); returns (body, headers)."""
    boundary = "trocr-test-boundary"
    chunks = []
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def raw_exchange(port, data, read_timeout=10):
    """Sends raw bytes on a new connection; returns what came back until the server closed it
    or the timeout passed."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def status_of(raw):
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(match.group(1)) if match else None

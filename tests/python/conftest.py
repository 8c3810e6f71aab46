"""Fixtures of the trocr_rt tests: the committed golden model (HF's outputs made on the GPU
machine by python/make_goldens.py), its images, and the CLI built beside the package."""
import contextlib
import json
import os
import socket
import struct
import subprocess
import time
import urllib.request

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "tests", "data", "models", "vit-char")
IMAGES = os.path.join(ROOT, "tests", "data", "images")


def read_safetensors(path):
    """{name: float32 array} from a safetensors file (F32 tensors only: the goldens)."""
    with open(path, "rb") as file:
        header_size = struct.unpack("<Q", file.read(8))[0]
        header = json.loads(file.read(header_size))
        data = file.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", name
        begin, end = entry["data_offsets"]
        tensors[name] = numpy.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"])
    return tensors


@pytest.fixture(scope="session")
def golden():
    with open(os.path.join(MODEL, "golden.json")) as file:
        return json.load(file)


@pytest.fixture(scope="session")
def golden_tensors():
    return read_safetensors(os.path.join(MODEL, "golden.safetensors"))


@pytest.fixture(scope="session")
def recognizer():
    import trocr_rt
    return trocr_rt.Recognizer(MODEL, batch_size=4, threads=2)


def image_path(name):
    return os.path.join(IMAGES, name)


@contextlib.contextmanager
def running_server(cli, model, threads=1):
    """`trocr serve` on a free port for the duration; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([cli, "serve", "-m", model, "--port", str(port), "--threads", str(threads), "--access-log", ""],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError("trocr serve did not come up")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)

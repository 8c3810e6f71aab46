"""The examples in examples/python run and say what the API says."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from conftest import IMAGES, MODEL, ROOT, image_path

EXAMPLES = os.path.join(ROOT, "examples", "python")


def run_example(name, *arguments):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *arguments], capture_output=True,
                          text=True, check=True).stdout


def test_folder_to_jsonl(recognizer):
    lines = [json.loads(line) for line in run_example("folder_to_jsonl.py", MODEL, IMAGES).splitlines()]
    expected = list(recognizer.recognize_files(IMAGES))
    assert [line["path"] for line in lines] == [result.source for result in expected]
    assert [line["text"] for line in lines] == [result.text for result in expected]


def test_pil_and_numpy(recognizer):
    output = run_example("pil_and_numpy.py", MODEL, image_path("line_rgb.png"))
    text = recognizer.recognize(image_path("line_rgb.png")).text
    for label in ["PIL", "gray array", "RGBA array", "bytes"]:
        assert f"{label}: " in output
    assert f"PIL: {text}  " in output and f"bytes: {text}  " in output
    best = recognizer.recognize(image_path("line_rgb.png"), num_beams=4, num_return_sequences=3, max_new_tokens=32)
    for candidate in best.candidates:
        assert f"{candidate.score:9.4f}  {candidate.text}" in output


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_client(recognizer, cli):
    port = free_port()
    server = subprocess.Popen([cli, "serve", "-m", MODEL, "--port", str(port), "--threads", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError("trocr serve did not come up")
                time.sleep(0.1)
        paths = [image_path(name) for name in ["wide.jpg", "tiny.png", "line_gray.png"]]
        output = run_example("serve_client.py", f"http://127.0.0.1:{port}", *paths)
        texts = [line.split("\t")[1] for line in output.splitlines()]
        assert texts == [result.text for result in recognizer.recognize(paths)]
    finally:
        server.terminate()
        server.wait(timeout=30)

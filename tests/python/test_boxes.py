"""Lines cut from a page by detector boxes: exact pixels for upright boxes, and the demo model's
own answer on each original line for tilted and vertical ones."""
import glob
import json
import os
import subprocess
import urllib.request

import numpy
import pytest
from PIL import Image

import trocr_rt
from conftest import ROOT, running_server

DEMO = os.path.join(ROOT, "models", "demo")
SAMPLES = sorted(glob.glob(os.path.join(ROOT, "data", "samples", "*.jpg")))


@pytest.fixture(scope="module")
def demo():
    return trocr_rt.Recognizer(DEMO, threads=2)


def rotated_corners(width, height, degrees, center):
    """The corners (clockwise from the top-left) of a width x height rectangle turned by
    `degrees` counter-clockwise about its center, placed at `center`."""
    angle = numpy.radians(degrees)
    rotation = numpy.array([[numpy.cos(angle), numpy.sin(angle)], [-numpy.sin(angle), numpy.cos(angle)]])
    half = numpy.array([[-width / 2, -height / 2], [width / 2, -height / 2], [width / 2, height / 2],
                        [-width / 2, height / 2]])
    return half @ rotation.T + numpy.array(center)


def test_upright_boxes_cut_exact_pixels(recognizer):
    page = Image.new("RGB", (900, 300), (255, 255, 255))
    lines = [Image.open(path).convert("RGB") for path in SAMPLES[:3]]
    boxes, top = [], 10
    for line in lines:
        page.paste(line, (37, top))
        boxes.append((37, top, 37 + line.width, top + line.height))
        top += line.height + 13
    for cut, line in zip(trocr_rt.crop_lines(page, boxes), lines):
        assert numpy.array_equal(cut, numpy.asarray(line))
    # Through the box API, the cut lines read as the lines themselves.
    results = recognizer.recognize(page, boxes=boxes)
    assert [r.ids for r in results] == [r.ids for r in recognizer.recognize(lines)]
    assert results[0].box == [(37.0, 10.0), (37.0 + lines[0].width, 10.0), (37.0 + lines[0].width,
                                                                             10.0 + lines[0].height), (37.0, 10.0 + lines[0].height)]


@pytest.mark.parametrize("degrees", [0, 4, -9])
def test_tilted_lines_read_as_the_lines_themselves(demo, degrees):
    page = Image.new("RGB", (1400, 900), (255, 255, 255))
    boxes, expected = [], []
    for i, path in enumerate(SAMPLES):
        line = Image.open(path).convert("RGB")
        turned = line.rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        center = (700, 120 + 200 * i)
        page.paste(turned, (int(center[0] - turned.width / 2), int(center[1] - turned.height / 2)))
        pasted_center = (int(center[0] - turned.width / 2) + turned.width / 2,
                         int(center[1] - turned.height / 2) + turned.height / 2)
        boxes.append(rotated_corners(line.width, line.height, degrees, pasted_center))
        expected.append(demo.recognize(line).text)
    results = demo.recognize(page, boxes=boxes)
    assert [r.text for r in results] == expected


def test_vertical_line_is_turned_to_read_left_to_right(demo):
    line = Image.open(SAMPLES[0]).convert("RGB")
    page = Image.new("RGB", (400, 1200), (255, 255, 255))
    vertical = line.rotate(-90, expand=True)  # clockwise: the line's start is now at the top
    page.paste(vertical, (100, 50))
    box = [(100, 50), (100 + vertical.width, 50), (100 + vertical.width, 50 + vertical.height),
           (100, 50 + vertical.height)]
    result = demo.recognize(page, boxes=[box])[0]
    assert result.text == demo.recognize(line).text
    assert numpy.array_equal(trocr_rt.crop_lines(page, [box])[0], numpy.asarray(line))  # turned back exactly


def test_bad_boxes_raise_clear_errors(recognizer):
    page = numpy.full((50, 80, 3), 255, dtype=numpy.uint8)
    with pytest.raises(ValueError, match="box 0"):
        recognizer.recognize(page, boxes=[(1, 2, 3)])
    with pytest.raises(trocr_rt.Error, match="box 1.*less than one pixel"):
        recognizer.recognize(page, boxes=[(0, 0, 10, 10), (5, 5, 5, 5)])
    with pytest.raises(trocr_rt.Error, match="not a finite number"):
        recognizer.recognize(page, boxes=[(0, 0, float("nan"), 10)])
    assert recognizer.recognize(page, boxes=[]) == []


def test_cli_boxes_give_the_python_answers(demo, cli, tmp_path):
    page = Image.new("RGB", (1400, 700), (255, 255, 255))
    boxes = []
    for i, path in enumerate(SAMPLES):
        line = Image.open(path).convert("RGB")
        turned = line.rotate(5, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        left, top = 40, 30 + 200 * i
        page.paste(turned, (left, top))
        corners = rotated_corners(line.width, line.height, 5, (left + turned.width / 2, top + turned.height / 2))
        boxes.append({"transcription": "", "points": corners.tolist()})  # PaddleOCR's label layout
    page_path, boxes_path = tmp_path / "page.png", tmp_path / "boxes.json"
    page.save(page_path)
    boxes_path.write_text(json.dumps(boxes))
    run = subprocess.run([cli, "recognize", "-m", DEMO, "--threads", "2", "--json", "--boxes", str(boxes_path),
                          str(page_path)], capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    expected = demo.recognize(page, boxes=[box["points"] for box in boxes])
    assert [line["text"] for line in lines] == [result.text for result in expected]
    assert [line["box_index"] for line in lines] == list(range(len(boxes)))
    assert numpy.allclose([line["box"] for line in lines], [result.box for result in expected])

    boxes_path.write_text(json.dumps([[0, 0, 10, 10], [[1, 2], [3, 4]]]))
    bad = subprocess.run([cli, "recognize", "-m", DEMO, "--boxes", str(boxes_path), str(page_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and f"{boxes_path}: box 1: expected four [x, y] corners" in bad.stderr


def post_multipart(url, fields):
    """fields: (name, filename or None, bytes); returns (status, parsed JSON)."""
    import urllib.error
    boundary = "trocr-test-boundary"
    body = b""
    for name, filename, content in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_serve_reads_the_lines_of_a_page_from_a_boxes_field(cli, tmp_path):
    page = Image.new("RGB", (1400, 700), (255, 255, 255))
    boxes = []
    for i, path in enumerate(SAMPLES):
        line = Image.open(path).convert("RGB")
        turned = line.rotate(6, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        page.paste(turned, (60, 25 + 220 * i))
        center = (60 + turned.width / 2, 25 + 220 * i + turned.height / 2)
        boxes.append(rotated_corners(line.width, line.height, 6, center).tolist())
    page.save(tmp_path / "page.png")
    page_bytes = (tmp_path / "page.png").read_bytes()
    with running_server(cli, DEMO, threads=2) as base:
        url = base + "/v1/recognize"
        status, reply = post_multipart(url, [("page", "page.png", page_bytes), ("boxes", None, json.dumps(boxes).encode())])
        assert status == 200, reply
        expected = trocr_rt.Recognizer(DEMO, threads=2).recognize(page, boxes=boxes)
        assert [item["text"] for item in reply["results"]] == [result.text for result in expected]
        assert [item["name"] for item in reply["results"]] == [f"page.png#box{i}" for i in range(len(boxes))]
        assert numpy.allclose([item["box"] for item in reply["results"]], boxes)
        status, reply = post_multipart(url, [("page", "page.png", page_bytes), ("boxes", None, b"[[1, 2, 3]]")])
        assert status == 400 and "boxes: box 0: expected four" in reply["error"]
        status, reply = post_multipart(url, [("a", "a.png", page_bytes), ("b", "b.png", page_bytes),
                                             ("boxes", None, json.dumps(boxes).encode())])
        assert status == 400 and "exactly one page image" in reply["error"]

"""The examples in examples/python run and say what the API says."""
import json
import os
import subprocess
import sys

from conftest import IMAGES, MODEL, ROOT, image_path, running_server

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


def test_page_boxes(tmp_path):
    from test_boxes import DEMO, SAMPLES, rotated_corners
    import trocr_rt
    from PIL import Image
    page = Image.new("RGB", (1400, 700), (255, 255, 255))
    boxes = []
    for i, path in enumerate(SAMPLES):
        line = Image.open(path).convert("RGB")
        turned = line.rotate(-3, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        page.paste(turned, (50, 20 + 220 * i))
        center = (50 + turned.width / 2, 20 + 220 * i + turned.height / 2)
        boxes.append({"points": rotated_corners(line.width, line.height, -3, center).tolist()})
    page.save(tmp_path / "page.png")
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    output = run_example("page_boxes.py", DEMO, str(tmp_path / "page.png"), str(tmp_path / "boxes.json"),
                         "--save-lines", str(tmp_path / "lines"))
    lines = [json.loads(line) for line in output.splitlines()]
    expected = trocr_rt.Recognizer(DEMO, threads=2).recognize(page, boxes=[box["points"] for box in boxes])
    assert [line["text"] for line in lines] == [result.text for result in expected]
    assert sorted(os.listdir(tmp_path / "lines")) == [f"line-{i}.png" for i in range(len(boxes))]


def test_serve_client(recognizer, cli):
    with running_server(cli, MODEL) as url:
        paths = [image_path(name) for name in ["wide.jpg", "tiny.png", "line_gray.png"]]
        output = run_example("serve_client.py", url, *paths)
    texts = [line.split("\t")[1] for line in output.splitlines()]
    assert texts == [result.text for result in recognizer.recognize(paths)]

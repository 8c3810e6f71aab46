"""recognize_files over folders, and the same answers as the trocr CLI."""
import json
import os
import shutil
import subprocess

from PIL import Image

from conftest import IMAGES, MODEL, image_path


def make_tree(root):
    """Images in nested folders, with files that are no images beside them."""
    layout = {"b/x.png": "tiny.png", "a/z.jpg": "wide.jpg", "a/sub/y.png": "palette.png", "c.png": "line_rgb.png"}
    for target, source in layout.items():
        os.makedirs(os.path.dirname(os.path.join(root, target)), exist_ok=True)
        shutil.copyfile(image_path(source), os.path.join(root, target))
    open(os.path.join(root, "a", "notes.txt"), "w").write("not an image")
    return sorted(os.path.join(root, target) for target in layout)


def test_recognize_files_streams_folders_in_path_order(recognizer, tmp_path):
    expected_paths = make_tree(str(tmp_path))
    results = list(recognizer.recognize_files([str(tmp_path)], batch_size=3))
    assert [result.source for result in results] == expected_paths
    direct = recognizer.recognize(expected_paths)
    assert [result.ids for result in results] == [result.ids for result in direct]
    one_by_one = list(recognizer.recognize_files(tmp_path, batch_size=1, num_beams=2))
    assert [result.ids for result in one_by_one] == [r.ids for r in recognizer.recognize(expected_paths, num_beams=2)]


def test_python_gives_the_cli_answers(recognizer, cli):
    names = sorted(os.listdir(IMAGES))
    for settings, flags in [({}, []), ({"num_beams": 3, "max_length": 12}, ["--beams", "3", "--max-length", "12"])]:
        run = subprocess.run([cli, "recognize", "-m", MODEL, "--json", "--threads", "2", *flags, IMAGES],
                             capture_output=True, text=True, check=True)
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert [os.path.basename(line["path"]) for line in lines] == names
        pil_images = [Image.open(image_path(name)) for name in names]
        for line, result in zip(lines, recognizer.recognize(pil_images, **settings)):
            assert result.text == line["text"], line["path"]
            assert result.ids == line["ids"], line["path"]
            assert abs(result.confidence - line["mean_token_probability"]) < 1e-6, line["path"]
            assert abs(result.score - line["score"]) < 1e-6, line["path"]

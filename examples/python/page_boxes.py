#!/usr/bin/env python3
"""Read the text lines of a page from a detector's boxes (PaddleOCR, docTR: four corners per line,
clockwise from the line's top-left; or x0, y0, x1, y1 rectangles), one JSON line per box.

    python3 page_boxes.py MODEL_DIR page.png boxes.json [--save-lines DIR]

boxes.json: a list of boxes, each [[x, y], [x, y], [x, y], [x, y]], [x0, y0, x1, y1] or an object
with "points" (PaddleOCR's label files).
"""
import argparse
import json
import os
import sys

from PIL import Image

import trocr_rt

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model_dir")
parser.add_argument("page")
parser.add_argument("boxes")
parser.add_argument("--save-lines", metavar="DIR", help="also write each cut line as DIR/line-N.png")
arguments = parser.parse_args()

boxes = json.load(open(arguments.boxes))  # read as trocr recognize --boxes reads it
recognizer = trocr_rt.Recognizer(arguments.model_dir)
for index, result in enumerate(recognizer.recognize(arguments.page, boxes=boxes)):
    line = {"box": [[round(x, 1), round(y, 1)] for x, y in result.box], "text": result.text,
            "confidence": round(result.confidence, 4)}
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
if arguments.save_lines:
    os.makedirs(arguments.save_lines, exist_ok=True)
    for index, array in enumerate(trocr_rt.crop_lines(arguments.page, boxes)):
        Image.fromarray(array).save(os.path.join(arguments.save_lines, f"line-{index}.png"))

#!/usr/bin/env python3
"""trocr_rt with images already in memory: PIL images in any mode, numpy arrays, encoded bytes,
and HF's generation settings per call.

    python3 pil_and_numpy.py MODEL_DIR IMAGE
"""
import sys

import numpy
from PIL import Image

import trocr_rt

model_dir, path = sys.argv[1], sys.argv[2]
recognizer = trocr_rt.Recognizer(model_dir)
print("checkpoint settings:", recognizer.generation)

image = Image.open(path)
gray = numpy.asarray(image.convert("L"))           # HxW uint8
rgba = numpy.asarray(image.convert("RGBA"))        # HxWx4 uint8 (alpha is dropped, as Pillow does)
encoded = open(path, "rb").read()                  # bytes of a PNG, JPEG or WebP file
for label, result in zip(["PIL", "gray array", "RGBA array", "bytes"],
                         recognizer.recognize([image, gray, rgba, encoded])):
    print(f"{label:>10}: {result.text}  (confidence {result.confidence:.3f})")

# Generation settings use HF generate()'s names: here the three best beams.
best = recognizer.recognize(image, num_beams=4, num_return_sequences=3, max_new_tokens=32)
for candidate in best.candidates:
    print(f"{candidate.score:9.4f}  {candidate.text}")

#!/usr/bin/env python3
"""Recognize every image below a folder into JSON lines (path, text, confidence), streaming.

    python3 folder_to_jsonl.py MODEL_DIR FOLDER [--device cuda --dtype fp16] > lines.jsonl
"""
import argparse
import json
import sys

import trocr_rt

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model_dir")
parser.add_argument("folder")
parser.add_argument("--device", default="cpu")
parser.add_argument("--dtype", default="fp32")
parser.add_argument("--batch", type=int, default=16)
arguments = parser.parse_args()

recognizer = trocr_rt.Recognizer(arguments.model_dir, device=arguments.device, dtype=arguments.dtype,
                                 batch_size=arguments.batch)
for result in recognizer.recognize_files(arguments.folder):
    line = {"path": result.source, "text": result.text, "confidence": round(result.confidence, 4)}
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")

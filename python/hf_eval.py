#!/usr/bin/env python3
"""HF transformers reads an evaluation set with a TrOCR checkpoint: the oracle `trocr eval` is
compared with. Run on the GPU machine (torch + transformers there).

    python3 python/hf_eval.py --model DIR --data data/synth-eval --json hf_eval.json [--compare OLD.json]

For every NAME.jpg (with NAME.txt) it records the text and ids HF's generate() produces in fp32
with the checkpoint's own generation settings ("default") and with greedy search ("greedy"),
plus CER and line accuracy of each. Pixels come from ViTImageProcessorPil, the original PIL
pipeline that trocr-rt reproduces. --compare checks that a new oracle gives the ids of an older
record on every line (exit 1 if not).
"""
import argparse
import json
import os
import sys
import time

import torch
import transformers
from PIL import Image

from char_text import char_decode, edit_distance


def dataset(folder):
    names = sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".jpg"))
    for name in names:
        with open(os.path.join(folder, name + ".txt"), encoding="utf-8") as f:
            yield name + ".jpg", f.read().strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--compare", help="an earlier record whose ids every line must keep")
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False  # an fp32 oracle, not TF32
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = transformers.VisionEncoderDecoderModel.from_pretrained(
        args.model, dtype=torch.float32).to(device).eval()
    processor_class = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)
    processor = processor_class.from_pretrained(args.model)
    with open(os.path.join(args.model, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    inverse = {i: t for t, i in vocab.items()}
    samples = list(dataset(args.data))
    settings = {"default": {}, "greedy": {"num_beams": 1}}
    results = {"model": os.path.basename(os.path.normpath(args.model)),
               "transformers": transformers.__version__, "torch": torch.__version__,
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "lines": {name: {"label": label} for name, label in samples}, "summary": {}}
    for setting, overrides in settings.items():
        errors = chars = correct = 0
        started = time.time()
        for begin in range(0, len(samples), args.batch):
            chunk = samples[begin:begin + args.batch]
            images = [Image.open(os.path.join(args.data, name)).convert("RGB") for name, _ in chunk]
            pixels = processor(images, return_tensors="pt").pixel_values.to(device)
            with torch.no_grad():
                rows = model.generate(pixels, **overrides).tolist()
            for (name, label), ids in zip(chunk, rows):
                while len(ids) > 1 and ids[-1] == vocab["<pad>"]:
                    ids.pop()
                text = char_decode(ids[1:], vocab, inverse)
                results["lines"][name][setting] = {"text": text, "ids": ids}
                errors += edit_distance(text, label)
                chars += len(label)
                correct += text == label
        results["summary"][setting] = {"cer": errors / chars, "line_accuracy": correct / len(samples),
                                       "lines": len(samples), "seconds": time.time() - started}
        print(setting, results["summary"][setting], flush=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)
    if args.compare:
        return compare(results, args.compare)
    return 0


def compare(results, path):
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
    differing = [(name, setting) for name, line in results["lines"].items() for setting in results["summary"]
                 if line[setting]["ids"] != old["lines"][name][setting]["ids"]]
    compared = len(results["lines"]) * len(results["summary"])
    print(f"against {path}: {compared - len(differing)} of {compared} sequences identical", flush=True)
    for name, setting in differing:
        print(f"  {name} {setting}: {old['lines'][name][setting]['text']!r} -> {results['lines'][name][setting]['text']!r}")
    return 1 if differing or compared == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

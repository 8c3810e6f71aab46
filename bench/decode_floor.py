#!/usr/bin/env python3
"""The weight-read floor of one decode step at batch 1 (#16): the bytes a step must read from
memory (every decoder weight a step multiplies by: self-attention Q/K/V/output, cross-attention
query and output, FFN, output projection; plus the cached cross-attention K/V over the encoder's
tokens), divided by a measured copy bandwidth.

    bench/decode_floor.py MODEL_DIR [MODEL_DIR ...] [--bandwidth-tb-s 3.45] [--bytes 2]

Prints a Markdown table. The sizes come from the checkpoint's config.json alone.
"""
import argparse
import json
import os


def step_bytes(config, value_bytes):
    encoder, decoder = config["encoder"], config["decoder"]
    width, ffn, layers = decoder["d_model"], decoder["decoder_ffn_dim"], decoder["decoder_layers"]
    image, patch = encoder["image_size"], encoder["patch_size"]
    height, wide = (image, image) if isinstance(image, int) else image
    prefix = 2 if encoder.get("model_type") == "deit" else 1
    tokens = (height // patch) * (wide // patch) + prefix
    per_layer = (4 * width * width + 2 * width * width + 2 * width * ffn) * value_bytes  # weights
    cross_cache = 2 * tokens * width * value_bytes  # this layer's cached K and V for one image
    output = decoder["vocab_size"] * width * value_bytes
    return dict(weights=layers * per_layer + output, cross_cache=layers * cross_cache, tokens=tokens)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--bandwidth-tb-s", type=float, default=3.45,
                        help="a plain reduction's rate on the H200 (the issue's 3.45 TB/s)")
    parser.add_argument("--bytes", type=int, default=2, help="bytes per value (2: fp16)")
    args = parser.parse_args()
    print(f"| model | weights per step | cross K/V per step | floor per step at {args.bandwidth_tb_s} TB/s |")
    print("|---|---|---|---|")
    for directory in args.models:
        config = json.load(open(os.path.join(directory, "config.json")))
        sizes = step_bytes(config, args.bytes)
        total = sizes["weights"] + sizes["cross_cache"]
        floor_us = total / (args.bandwidth_tb_s * 1e12) * 1e6
        print(f"| {os.path.basename(os.path.normpath(directory))} | {sizes['weights'] / 1e6:.1f} MB | "
              f"{sizes['cross_cache'] / 1e6:.1f} MB ({sizes['tokens']} tokens) | {floor_us:.1f} us |")


if __name__ == "__main__":
    main()

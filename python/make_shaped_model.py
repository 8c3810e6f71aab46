#!/usr/bin/python3
"""A random-weight TrOCR checkpoint at full size, written with numpy alone, for machines without
torch (the 2-core build machine): vit-char's tensor names and config at the sizes asked for.
`--shape trocr-small` gives trocr-small's sizes with a ViT encoder in place of DeiT (577 encoder
tokens instead of 578, no distillation token), close enough to time the CPU engine on; the GPU
machine's python/make_full_models.py writes the real classes through transformers.

    /usr/bin/python3 python/make_shaped_model.py --shape trocr-small --out /tmp/shaped
"""
import argparse
import json
import os
import struct
import sys

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fuzz_model import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "tests", "data", "models", "vit-char")

SHAPES = {
    "trocr-small": dict(
        encoder=dict(hidden_size=384, intermediate_size=1536, num_attention_heads=6, num_hidden_layers=12,
                     image_size=384, patch_size=16),
        decoder=dict(d_model=256, decoder_ffn_dim=1024, decoder_attention_heads=8, decoder_layers=6,
                     vocab_size=64044, max_position_embeddings=512, activation_function="relu",
                     scale_embedding=True),
    ),
}


def char_vocab(size):
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    code = 0x4E00
    while len(tokens) < size:
        if not 0xD800 <= code <= 0xDFFF:
            tokens.append(chr(code))
        code += 1
    return {token: index for index, token in enumerate(tokens)}


def tensor_shape(name, encoder, decoder):
    """The shape of one of vit-char's tensors (layer 0's stand for every layer) at these sizes."""
    hidden, ffn, d_model, d_ffn = encoder["hidden_size"], encoder["intermediate_size"], decoder["d_model"], decoder["decoder_ffn_dim"]
    patches = (encoder["image_size"] // encoder["patch_size"]) ** 2
    if name.startswith("encoder."):
        if name.endswith("cls_token"):
            return [1, 1, hidden]
        if name.endswith("position_embeddings"):
            return [1, patches + 1, hidden]
        if name.endswith("projection.weight"):
            return [hidden, 3, encoder["patch_size"], encoder["patch_size"]]
        if "intermediate.dense" in name:
            return [ffn, hidden] if name.endswith("weight") else [ffn]
        if "output.dense.weight" in name and "attention" not in name:
            return [hidden, ffn]
        return [hidden, hidden] if name.endswith("weight") and "layernorm" not in name else [hidden]
    if name.endswith("embed_positions.weight"):
        return [decoder["max_position_embeddings"] + 2, d_model]
    if name.endswith("embed_tokens.weight") or name == "decoder.output_projection.weight":
        return [decoder["vocab_size"], d_model]
    if "fc1" in name:
        return [d_ffn, d_model] if name.endswith("weight") else [d_ffn]
    if "fc2.weight" in name:
        return [d_model, d_ffn]
    if "encoder_attn." in name and ("k_proj.weight" in name or "v_proj.weight" in name):
        return [d_model, d_model]  # behind enc_to_dec_proj
    return [d_model, d_model] if name.endswith("weight") and "layer_norm" not in name and "layernorm" not in name else [d_model]


def build(shape, out):
    sizes = SHAPES[shape]
    config = json.load(open(os.path.join(TEMPLATE, "config.json")))
    config["encoder"].update(sizes["encoder"], encoder_stride=sizes["encoder"]["patch_size"])
    config["decoder"].update(sizes["decoder"], decoder_start_token_id=2)
    config.update(decoder_start_token_id=2, pad_token_id=1, eos_token_id=2)
    with open(os.path.join(TEMPLATE, "model.safetensors"), "rb") as file:
        header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
    random = numpy.random.default_rng(0)
    layers = {"encoder.encoder.layer.": sizes["encoder"]["num_hidden_layers"],
              "decoder.model.decoder.layers.": sizes["decoder"]["decoder_layers"]}
    tensors = {}
    for name in sorted(header):
        if name == "__metadata__" or ".layer.1." in name or ".layers.1." in name or name.startswith("encoder.pooler"):
            continue
        extent = tensor_shape(name, sizes["encoder"], sizes["decoder"])
        prefix = next((p for p in layers if name.startswith(p + "0.")), None)
        names = [name] if prefix is None else [name.replace(prefix + "0.", f"{prefix}{i}.") for i in range(layers[prefix])]
        for each in names:
            values = random.standard_normal(extent).astype("<f4") * 0.02
            if "norm" in each and each.endswith("weight"):
                values += 1.0
            tensors[each] = values
    d_model, hidden = sizes["decoder"]["d_model"], sizes["encoder"]["hidden_size"]
    if d_model != hidden:  # VisionEncoderDecoderModel's projection between the two widths
        tensors["enc_to_dec_proj.weight"] = random.standard_normal([d_model, hidden]).astype("<f4") * 0.02
        tensors["enc_to_dec_proj.bias"] = numpy.zeros([d_model], "<f4")
    directory = os.path.join(out, shape)
    os.makedirs(directory, exist_ok=True)
    write_safetensors(os.path.join(directory, "model.safetensors"), tensors)
    json.dump(config, open(os.path.join(directory, "config.json"), "w"), indent=1)
    preprocessor = json.load(open(os.path.join(TEMPLATE, "preprocessor_config.json")))
    side = sizes["encoder"]["image_size"]
    preprocessor["size"] = {"height": side, "width": side}
    json.dump(preprocessor, open(os.path.join(directory, "preprocessor_config.json"), "w"), indent=1)
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as file:
        json.dump(char_vocab(sizes["decoder"]["vocab_size"]), file, ensure_ascii=False)
    print(shape, sum(t.size for t in tensors.values()) / 1e6, "M parameters ->", directory)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="trocr-small")
    parser.add_argument("--out", required=True)
    build(parser.parse_args().shape, parser.parse_args().out)

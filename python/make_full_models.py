#!/usr/bin/env python3
"""Random-weight HF TrOCR checkpoints with the real trocr-base and trocr-small shapes.

Run on the GPU machine (no hub there). trocr-base: ViT-base/16 at 384x384 and the 12-layer
1024-wide decoder with a trocr-chinese-like char vocabulary of 11000; trocr-small: DeiT-small/16
at 384x384 and the 6-layer 256-wide decoder with trocr-small's 64044 tokens. The vocabulary files
are char-level (random weights read no real text anyway).
"""
import argparse
import json
import os

import torch
import transformers
from transformers import (DeiTConfig, TrOCRConfig, VisionEncoderDecoderConfig,
                          VisionEncoderDecoderModel, ViTConfig)

SHAPES = {
    "trocr-base": dict(
        encoder=(ViTConfig, dict(image_size=384, patch_size=16, hidden_size=768,
                                 num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, qkv_bias=True)),
        decoder=dict(d_model=1024, decoder_layers=12, decoder_attention_heads=16,
                     decoder_ffn_dim=4096, max_position_embeddings=512,
                     layernorm_embedding=True, scale_embedding=False,
                     use_learned_position_embeddings=True, activation_function="gelu"),
        vocab=11000),
    "trocr-small": dict(
        encoder=(DeiTConfig, dict(image_size=384, patch_size=16, hidden_size=384,
                                  num_hidden_layers=12, num_attention_heads=6,
                                  intermediate_size=1536, qkv_bias=True)),
        decoder=dict(d_model=256, decoder_layers=6, decoder_attention_heads=8,
                     decoder_ffn_dim=1024, max_position_embeddings=512,
                     layernorm_embedding=True, scale_embedding=True,
                     use_learned_position_embeddings=True, activation_function="relu"),
        vocab=64044),
}


def char_vocab(size):
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    code = 0x4E00
    while len(tokens) < size:
        if not 0xD800 <= code <= 0xDFFF:  # surrogates are not characters
            tokens.append(chr(code))
        code += 1
    return {t: i for i, t in enumerate(tokens)}


def build(name, out):
    spec = SHAPES[name]
    encoder_class, encoder_kwargs = spec["encoder"]
    decoder = TrOCRConfig(vocab_size=spec["vocab"], pad_token_id=1, bos_token_id=0,
                          eos_token_id=2, decoder_start_token_id=2, **spec["decoder"])
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        encoder_class(**encoder_kwargs), decoder)
    config.decoder_start_token_id = 2
    config.pad_token_id = 1
    config.eos_token_id = 2
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config).eval()
    directory = os.path.join(out, name)
    model.save_pretrained(directory)
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(char_vocab(spec["vocab"]), f, ensure_ascii=False)
    processor_class = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)
    processor_class(size={"height": 384, "width": 384}, resample=2, image_mean=[0.5] * 3,
                    image_std=[0.5] * 3).save_pretrained(directory)
    print(name, sum(p.numel() for p in model.parameters()) / 1e6, "M parameters ->", directory)
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default="trocr-base,trocr-small")
    args = parser.parse_args()
    for model_name in args.models.split(","):
        build(model_name, args.out)

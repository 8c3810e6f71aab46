#!/usr/bin/env python3
"""Builds tiny random-weight HF TrOCR models and records what HF computes with them.

Run on the GPU machine (torch + transformers there): scripts/device_goldens.sh. For each
variant it writes, under OUT/<variant>/, the model directory as users have it (config.json,
model.safetensors, optionally pytorch_model.bin, vocab and preprocessor files) and
golden.safetensors + golden.json with HF's pixels, encoder output, logits and generate()
results for every image in tests/data/images.
"""
import argparse
import json
import os
import sys
import traceback

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.numpy import save_file
from char_text import char_decode
from transformers import (DeiTConfig, TrOCRConfig, VisionEncoderDecoderConfig,
                          VisionEncoderDecoderModel, ViTConfig)

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
CHARS = list("识别文字中数宽的本行一二三四五六七八九十OCRwidetxlnabc0123456789，。、")

# The settings trocr-chinese's training script writes into config.json.
TROCR_CHINESE_GENERATION = dict(num_beams=4, no_repeat_ngram_size=3, length_penalty=2.0,
                                early_stopping=True, max_length=16)

GENERATE_CASES = {
    "greedy": dict(num_beams=1, max_length=16, no_repeat_ngram_size=0),
    "greedy_min4": dict(num_beams=1, max_length=16, min_length=4, no_repeat_ngram_size=0),
    "greedy_norepeat2": dict(num_beams=1, max_length=16, no_repeat_ngram_size=2),
    "beam3_lp1_return2": dict(num_beams=3, max_length=16, length_penalty=1.0,
                              early_stopping=False, num_return_sequences=2,
                              no_repeat_ngram_size=0),
    "beam4_chinese": dict(num_beams=4, max_length=16, length_penalty=2.0, early_stopping=True,
                          no_repeat_ngram_size=3),
    "beam2_never_min5": dict(num_beams=2, max_length=14, early_stopping="never", min_length=5,
                             length_penalty=0.5, no_repeat_ngram_size=0),
    "beam5_lp-1": dict(num_beams=5, max_new_tokens=9, length_penalty=-1.0,
                       early_stopping=False, no_repeat_ngram_size=0),
}


def char_vocab():
    return {token: i for i, token in enumerate(SPECIALS + CHARS)}


def bpe_tokenizer(directory):
    from tokenizers import ByteLevelBPETokenizer
    corpus = ["the quick brown fox jumps over the lazy dog", "Hello, world! It's 2024.",
              "naïve café — résumé", "OCR of handwritten lines", "don't won't I'm we're",
              "numbers 0123456789 and symbols ?!.,;:"] * 20
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(corpus, vocab_size=320, min_frequency=1,
                                  special_tokens=SPECIALS)
    os.makedirs(directory, exist_ok=True)
    tokenizer.save_model(directory)
    return transformers.RobertaTokenizer(os.path.join(directory, "vocab.json"),
                                         os.path.join(directory, "merges.txt"))


def processor_kwargs(size, mean, std):
    return dict(do_resize=True, size={"height": size, "width": size}, resample=2,
                do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=mean,
                image_std=std)


def image_processor(size, mean, std):
    """The original PIL/numpy pipeline. transformers 5 defaults to a torchvision backend whose
    resize differs from Pillow's by one level at some pixels; ViTImageProcessorPil keeps the
    original arithmetic, which is what trocr-rt reproduces."""
    pil_class = getattr(transformers, "ViTImageProcessorPil", None)
    if pil_class is None:
        return transformers.ViTImageProcessor(**processor_kwargs(size, mean, std))
    return pil_class(**processor_kwargs(size, mean, std))


VARIANTS = {
    # trocr-chinese style: ViT encoder, char vocab, legacy generation settings in config.json.
    "vit-char": dict(
        encoder=("vit", dict(image_size=40, patch_size=8, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=64, hidden_act="gelu",
                             qkv_bias=True, layer_norm_eps=1e-12)),
        decoder=dict(d_model=32, decoder_layers=2, decoder_attention_heads=4,
                     decoder_ffn_dim=64, activation_function="gelu",
                     max_position_embeddings=64, scale_embedding=False,
                     use_learned_position_embeddings=True, layernorm_embedding=True),
        vocab="char", tie=False, start=0, legacy_generation=True, torch_bin=True,
        image=(40, [0.5] * 3, [0.5] * 3)),
    # trocr-small style: DeiT encoder without qkv bias, BPE vocab, sinusoidal positions.
    "deit-bpe": dict(
        encoder=("deit", dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, hidden_act="gelu",
                              qkv_bias=False, layer_norm_eps=1e-12)),
        decoder=dict(d_model=32, decoder_layers=3, decoder_attention_heads=4,
                     decoder_ffn_dim=48, activation_function="relu",
                     max_position_embeddings=64, scale_embedding=True,
                     use_learned_position_embeddings=False, layernorm_embedding=False),
        vocab="bpe", tie=True, start=2, legacy_generation=False, torch_bin=False,
        image=(32, [0.5] * 3, [0.5] * 3)),
    # Encoder wider than decoder (enc_to_dec_proj), image size not a multiple of 32.
    "vit-proj": dict(
        encoder=("vit", dict(image_size=36, patch_size=6, hidden_size=48, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=96, hidden_act="gelu",
                             qkv_bias=True, layer_norm_eps=1e-6)),
        decoder=dict(d_model=32, decoder_layers=2, decoder_attention_heads=2,
                     decoder_ffn_dim=64, activation_function="gelu",
                     max_position_embeddings=48, scale_embedding=True,
                     use_learned_position_embeddings=True, layernorm_embedding=True),
        vocab="char", tie=True, start=0, legacy_generation=False, torch_bin=False,
        image=(36, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])),
}


def build_model(spec, vocab_size):
    kind, encoder_kwargs = spec["encoder"]
    encoder_config = (ViTConfig if kind == "vit" else DeiTConfig)(initializer_range=0.25,
                                                                    **encoder_kwargs)
    decoder_config = TrOCRConfig(vocab_size=vocab_size, init_std=0.25,
                                 tie_word_embeddings=spec["tie"], pad_token_id=1,
                                 bos_token_id=0, eos_token_id=2,
                                 decoder_start_token_id=spec["start"], **spec["decoder"])
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder_config,
                                                                     decoder_config)
    config.decoder_start_token_id = spec["start"]
    config.pad_token_id = 1
    config.eos_token_id = 2
    config.tie_word_embeddings = spec["tie"]
    torch.manual_seed(sum(map(ord, kind)) + vocab_size)
    model = VisionEncoderDecoderModel(config=config).eval()
    with torch.no_grad():
        # Random weights rarely pick </s>; make it likely enough that beams finish.
        model.decoder.output_projection.weight[2] *= 1.7
    return model


def save_variant(name, spec, out, images):
    directory = os.path.join(out, name)
    os.makedirs(directory, exist_ok=True)
    size, mean, std = spec["image"]
    processor = image_processor(size, mean, std)
    if spec["vocab"] == "char":
        vocab = char_vocab()
        with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        processor.save_pretrained(directory)
        tokenizer = None
        decode = lambda rows: [char_decode(r, vocab) for r in rows]
    else:
        tokenizer = bpe_tokenizer(directory)
        vocab = tokenizer.get_vocab()
        transformers.TrOCRProcessor(image_processor=processor,
                                    tokenizer=tokenizer).save_pretrained(directory)
        decode = lambda rows: tokenizer.batch_decode(rows, skip_special_tokens=True)

    model = build_model(spec, len(vocab))
    model.save_pretrained(directory)
    if spec["torch_bin"]:
        # The tensors under the names checkpoints carry on disk (transformers 5 renames ViT's
        # modules in memory and maps them back on save), as older transformers saved them.
        from safetensors.torch import load_file
        on_disk = load_file(os.path.join(directory, "model.safetensors"))
        torch.save(on_disk, os.path.join(directory, "pytorch_model.bin"))
    if spec["legacy_generation"]:
        # Old transformers (as trocr-chinese used) kept generation settings in config.json.
        path = os.path.join(directory, "config.json")
        config = json.load(open(path))
        config.update(TROCR_CHINESE_GENERATION)
        json.dump(config, open(path, "w"), indent=2)
        gen_path = os.path.join(directory, "generation_config.json")
        if os.path.exists(gen_path):
            os.remove(gen_path)
        # Reload so that HF itself resolves the legacy settings. (Not done for every variant:
        # transformers 5.17 cannot run a reloaded sinusoidal-position TrOCR decoder, its
        # position table stays on the meta device.)
        model = VisionEncoderDecoderModel.from_pretrained(directory).eval()

    tensors = {}
    record = {"variant": name, "processor_class": type(processor).__name__,
              "state_dict_keys": sorted(model.state_dict().keys()),
              "generation_config": model.generation_config.to_dict(), "images": {},
              "batch": {}}
    pixel_list = []
    for image_name in images:
        image = Image.open(image_name).convert("RGB")
        pixels = processor(images=image, return_tensors="pt").pixel_values
        key = os.path.basename(image_name)
        pixel_list.append(pixels)
        tensors[f"{key}/pixel_values"] = pixels[0].numpy()
        try:
            default = transformers.ViTImageProcessor(**processor_kwargs(size, mean, std))
            default_pixels = default(images=image, return_tensors="pt").pixel_values
            record["images"].setdefault(key, {})["default_processor_max_abs_diff"] = float(
                (default_pixels - pixels).abs().max())
        except Exception as error:  # the default (torchvision) processor is informative only
            record["images"].setdefault(key, {})["default_processor_error"] = repr(error)
        entry = record["images"].setdefault(key, {})
        with torch.no_grad():
            encoder_out = model.encoder(pixel_values=pixels).last_hidden_state
            tensors[f"{key}/encoder_hidden"] = encoder_out[0].numpy()
            results = {}
            for case, kwargs in GENERATE_CASES.items():
                out = model.generate(pixels, return_dict_in_generate=True, output_scores=True,
                                     **kwargs)
                rows = out.sequences.tolist()
                result = {"ids": rows, "text": decode(rows)}
                if getattr(out, "sequences_scores", None) is not None:
                    result["sequences_scores"] = out.sequences_scores.tolist()
                else:
                    probs = [torch.softmax(s[0].float(), -1) for s in out.scores]
                    chosen = [float(p[t]) for p, t in zip(probs, rows[0][1:])]
                    result["token_probs"] = chosen
                results[case] = result
            default = model.generate(pixels, return_dict_in_generate=True)
            results["checkpoint_default"] = {"ids": default.sequences.tolist(),
                                             "text": decode(default.sequences.tolist())}
            entry["generate"] = results
            greedy = torch.tensor(results["greedy"]["ids"])
            logits = model(pixel_values=pixels, decoder_input_ids=greedy[:, :-1]).logits
            tensors[f"{key}/greedy_logits"] = logits[0].numpy()
    batch = torch.cat(pixel_list)
    with torch.no_grad():
        for case in ("greedy", "beam4_chinese", "beam3_lp1_return2"):
            out = model.generate(batch, return_dict_in_generate=True, **GENERATE_CASES[case])
            result = {"ids": out.sequences.tolist(), "text": decode(out.sequences.tolist())}
            if getattr(out, "sequences_scores", None) is not None:
                result["sequences_scores"] = out.sequences_scores.tolist()
            record["batch"][case] = result
    record["batch"]["images"] = [os.path.basename(i) for i in images]
    if tokenizer is not None:
        rng = np.random.default_rng(7)
        samples = [rng.integers(0, len(vocab), size=n).tolist() for n in (1, 5, 12, 30)]
        samples.append([0, 5, 7, 2, 1, 1])
        record["tokenizer_decode"] = {"ids": samples,
                                      "text": tokenizer.batch_decode(samples,
                                                                     skip_special_tokens=True),
                                      "class": type(tokenizer).__name__}
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              os.path.join(directory, "golden.safetensors"))
    with open(os.path.join(directory, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False, indent=1)
    print(f"{name}: {len(record['state_dict_keys'])} tensors, "
          f"generation_config={record['generation_config']}")
    for key, entry in record["images"].items():
        print(" ", key, {c: r["text"] for c, r in entry["generate"].items()})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--images", default="tests/data/images")
    args = parser.parse_args()
    images = sorted(os.path.join(args.images, f) for f in os.listdir(args.images))
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "numpy": np.__version__, "pillow": Image.__version__,
                "python": sys.version.split()[0]}
    try:
        import tokenizers
        versions["tokenizers"] = tokenizers.__version__
    except ImportError:
        pass
    os.makedirs(args.out, exist_ok=True)
    json.dump(versions, open(os.path.join(args.out, "versions.json"), "w"), indent=1)
    print(versions)
    failures = 0
    for name, spec in VARIANTS.items():
        try:
            save_variant(name, spec, args.out, images)
        except Exception:
            failures += 1
            traceback.print_exc()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

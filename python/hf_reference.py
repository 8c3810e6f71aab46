#!/usr/bin/env python3
"""What HF transformers computes in fp32 for a checkpoint and some images: the reference that
`trocr compare` measures trocr-rt's error statistics against. Run on the GPU machine.

    python3 python/hf_reference.py --model DIR --images data/synth-eval --count 16 --out ref

writes ref.safetensors (pixel_values [N,3,H,W]; encoder_output [N,S,D]; per image i,
logits/i [T,V], the decoder's logits teacher-forced on HF's greedy ids) and ref.json (the
generate() settings and the ids HF generated with each).
"""
import argparse
import json
import os

import torch
import transformers
from PIL import Image
from safetensors.torch import save_file

# Exactly 20 new tokens at most, as the benchmark; greedy and trocr-chinese's beam search.
SETTINGS = {
    "greedy": dict(num_beams=1, max_new_tokens=20, no_repeat_ngram_size=0),
    "beam4_chinese": dict(num_beams=4, max_new_tokens=20, no_repeat_ngram_size=3,
                          length_penalty=2.0, early_stopping=True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", required=True, help="folder of .jpg/.png images")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--out", required=True, help="path prefix of the .safetensors/.json pair")
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False  # an fp32 reference, not TF32
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = transformers.VisionEncoderDecoderModel.from_pretrained(
        args.model, dtype=torch.float32).to(device).eval()
    processor_class = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)
    processor = processor_class.from_pretrained(args.model)
    names = sorted(n for n in os.listdir(args.images) if n.lower().endswith((".jpg", ".png")))
    names = names[:args.count]
    images = [Image.open(os.path.join(args.images, n)).convert("RGB") for n in names]
    pixels = processor(images, return_tensors="pt").pixel_values.to(device)
    pad = model.config.pad_token_id
    tensors, record = {"pixel_values": pixels}, {"images": names, "settings": SETTINGS, "ids": {}}
    with torch.no_grad():
        encoded = model.encoder(pixel_values=pixels).last_hidden_state
        tensors["encoder_output"] = encoded
        for name, settings in SETTINGS.items():
            rows = model.generate(pixels, **settings).tolist()
            for row in rows:
                while len(row) > 1 and row[-1] == pad:
                    row.pop()
            record["ids"][name] = rows
        for i, ids in enumerate(record["ids"]["greedy"]):
            # The whole model, so that enc_to_dec_proj applies where the widths differ.
            decoder_input = torch.tensor([ids[:-1]], device=device)
            logits = model(pixel_values=pixels[i:i + 1], decoder_input_ids=decoder_input).logits
            tensors[f"logits/{i}"] = logits[0]
    save_file({k: v.float().contiguous().cpu() for k, v in tensors.items()}, args.out + ".safetensors")
    record.update(transformers=transformers.__version__, torch=torch.__version__,
                  device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu")
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    print(args.model, "->", args.out, {k: len(v) for k, v in record["ids"].items()})


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Trains the demo TrOCR model from scratch on freshly rendered Chinese text lines.

Run on the GPU machine (torch + transformers there) through scripts/device_train_demo.sh. The
model is a HF VisionEncoderDecoderModel shaped like trocr-chinese (ViT encoder, TrOCR decoder
with learned positions, a char-level vocab.json in trocr-chinese's format, labels
`<s> text </s>`, decoder_start `<s>`, beam 4, no_repeat_ngram_size 3, length_penalty 2.0,
early stopping) but small: the images are 48x576 text lines in 12-pixel patches. Training runs
for a fixed wall-clock budget with a cosine schedule over that budget, then the model is scored
on held-out lines and saved in fp16 with save_pretrained plus its processor files.
"""
import argparse
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from char_text import char_decode, edit_distance  # noqa: E402
from synth_lines import LineRenderer, charset  # noqa: E402

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BOS, PAD, EOS, UNK = 0, 1, 2, 3
MAX_CHARS = 25
IMAGE_HEIGHT, IMAGE_WIDTH, PATCH = 48, 576, 12
TRAIN_SEED, VALIDATION_SEED = 1, 2  # the committed evaluation set uses another seed


def make_vocab():
    return {token: i for i, token in enumerate(SPECIALS + charset())}


def encode_label(text, vocab):
    """trocr-chinese's labels: <s> chars </s>."""
    return [BOS] + [vocab.get(ch, UNK) for ch in text[:MAX_CHARS]] + [EOS]


def pixels_from_jpeg(jpeg):
    """Decode and resize as the image processor does (PIL bilinear); normalized on the GPU."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB").resize((IMAGE_WIDTH, IMAGE_HEIGHT),
                                                              Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


class SyntheticLines(torch.utils.data.IterableDataset):
    """Lines start, start + step, ... of a seed's stream, split over the loader's workers."""

    def __init__(self, seed, vocab, fonts_dir, start=0, count=None, curriculum=0):
        self.seed, self.vocab, self.fonts_dir = seed, vocab, fonts_dir
        self.start, self.count, self.curriculum = start, count, curriculum

    def longest(self, index):
        """Short lines first: the first `curriculum` lines grow from 4 to 25 characters, so that
        glyphs are learned before the decoder must align long sequences."""
        if index >= self.curriculum:
            return MAX_CHARS
        return 4 + (MAX_CHARS - 4) * index // self.curriculum

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        renderer = LineRenderer(self.fonts_dir)
        index = self.start + worker
        end = None if self.count is None else self.start + self.count
        while end is None or index < end:
            text, jpeg = renderer.sample(self.seed, index, longest=self.longest(index))
            yield pixels_from_jpeg(jpeg), encode_label(text, self.vocab), text
            index += workers


def collate(batch):
    pixels = torch.stack([b[0] for b in batch])
    longest = MAX_CHARS + 2  # one shape for every batch
    labels = torch.full((len(batch), longest), -100, dtype=torch.long)
    for row, (_, ids, _) in enumerate(batch):
        labels[row, :len(ids)] = torch.tensor(ids)
    return pixels, labels, [b[2] for b in batch]


class ReplayBuffer:
    """The most recent lines, on the GPU, for extra steps while the renderers catch up."""

    def __init__(self, capacity, device):
        self.capacity, self.device = capacity, device
        self.pixels = self.labels = None
        self.size = self.next = 0

    def add(self, pixels, labels):
        if self.pixels is None:
            self.pixels = torch.empty((self.capacity, *pixels.shape[1:]), dtype=pixels.dtype,
                                      device=self.device)
            self.labels = torch.full((self.capacity, MAX_CHARS + 2), -100, dtype=labels.dtype,
                                     device=self.device)
        rows = (self.next + torch.arange(len(pixels), device=self.device)) % self.capacity
        self.pixels[rows] = pixels
        self.labels[rows] = -100
        self.labels[rows, :labels.shape[1]] = labels
        self.next = (self.next + len(pixels)) % self.capacity
        self.size = min(self.size + len(pixels), self.capacity)

    def draw(self, count):
        rows = torch.randint(0, self.size, (count,), device=self.device)
        return self.pixels[rows], self.labels[rows]


class CtcHead(torch.nn.Module):
    """Training-only auxiliary loss: CTC over the encoder's patch columns (rows averaged). It
    gives the encoder a direct, alignment-free signal for every glyph, which the attention
    decoder alone provides only after it has learned where to look. Not saved with the model."""

    def __init__(self, hidden, vocab_size, rows, columns):
        super().__init__()
        self.rows, self.columns = rows, columns
        self.project = torch.nn.Linear(hidden, vocab_size)

    def loss(self, encoded, labels):
        patches = encoded[:, 1:, :]  # drop [CLS]; patches are row-major
        columns = patches.reshape(len(encoded), self.rows, self.columns, -1).mean(1)
        log_probs = self.project(columns).float().log_softmax(-1).transpose(0, 1)
        targets = labels[:, 1:]  # drop <s>; </s> and padding are masked below
        keep = (targets != -100) & (targets != EOS)
        lengths = keep.sum(1)
        return torch.nn.functional.ctc_loss(
            log_probs, targets[keep], torch.full_like(lengths, self.columns), lengths,
            blank=PAD, zero_infinity=True)


def normalize(pixels_uint8, device):
    return (pixels_uint8.to(device, non_blocking=True).float() / 255.0 - 0.5) / 0.5


def build_model(vocab_size, args):
    from transformers import (TrOCRConfig, VisionEncoderDecoderConfig,
                              VisionEncoderDecoderModel, ViTConfig)
    encoder = ViTConfig(image_size=[IMAGE_HEIGHT, IMAGE_WIDTH], patch_size=PATCH,
                        hidden_size=args.hidden, num_hidden_layers=args.encoder_layers,
                        num_attention_heads=args.hidden // 64, intermediate_size=4 * args.hidden,
                        hidden_act="gelu", qkv_bias=True, layer_norm_eps=1e-12,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    decoder = TrOCRConfig(vocab_size=vocab_size, d_model=args.hidden,
                          decoder_layers=args.decoder_layers,
                          decoder_attention_heads=args.hidden // 64,
                          decoder_ffn_dim=4 * args.hidden, activation_function="gelu",
                          max_position_embeddings=64, scale_embedding=False,
                          use_learned_position_embeddings=True, layernorm_embedding=True,
                          dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                          tie_word_embeddings=False, pad_token_id=PAD, bos_token_id=BOS,
                          eos_token_id=EOS, decoder_start_token_id=BOS)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = BOS, PAD, EOS
    config.tie_word_embeddings = False
    model = VisionEncoderDecoderModel(config=config)
    generation = model.generation_config
    generation.decoder_start_token_id, generation.bos_token_id = BOS, BOS
    generation.eos_token_id, generation.pad_token_id = EOS, PAD
    generation.max_length = MAX_CHARS + 7
    generation.num_beams = 4
    generation.no_repeat_ngram_size = 3
    generation.length_penalty = 2.0
    generation.early_stopping = True
    return model


def score(model, loader, vocab, inverse, device, **generate_kwargs):
    """CER and line accuracy of generate() on a finite loader."""
    model.eval()
    errors = chars = correct = lines = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for pixels, _, texts in loader:
            ids = model.generate(normalize(pixels, device), **generate_kwargs).tolist()
            for row, truth in zip(ids, texts):
                text = char_decode(row, vocab, inverse)
                errors += edit_distance(text, truth)
                chars += len(truth)
                correct += text == truth
                lines += 1
    model.train()
    return errors / max(chars, 1), correct / max(lines, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--fonts", help="font folder (python/subset_fonts.py) for synth_lines")
    parser.add_argument("--train-seconds", type=float, default=420)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=500)
    parser.add_argument("--curriculum-lines", type=int, default=200_000)
    parser.add_argument("--replay", type=int, default=2,
                        help="extra steps per fresh batch on lines drawn from a GPU buffer of "
                             "recent ones (rendering is slower than training)")
    parser.add_argument("--replay-lines", type=int, default=65536)
    parser.add_argument("--ctc-weight", type=float, default=0.5)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--encoder-layers", type=int, default=6)
    parser.add_argument("--decoder-layers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--validation-lines", type=int, default=1024)
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    vocab = make_vocab()
    inverse = {i: t for t, i in vocab.items()}
    model = build_model(len(vocab), args).to(device).train()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {parameters / 1e6:.2f}M parameters, vocab {len(vocab)}, args {vars(args)}",
          flush=True)

    train = torch.utils.data.DataLoader(
        SyntheticLines(TRAIN_SEED, vocab, args.fonts, curriculum=args.curriculum_lines), batch_size=args.batch,
        collate_fn=collate, num_workers=args.workers, pin_memory=True, prefetch_factor=8,
        persistent_workers=True)
    validation = torch.utils.data.DataLoader(
        SyntheticLines(VALIDATION_SEED, vocab, args.fonts, count=args.validation_lines),
        batch_size=256, collate_fn=collate, num_workers=args.workers)
    ctc = CtcHead(args.hidden, len(vocab), IMAGE_HEIGHT // PATCH, IMAGE_WIDTH // PATCH).to(device)
    named = list(model.named_parameters()) + list(ctc.named_parameters())
    decay = [p for n, p in named if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in named if not (p.ndim >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.98), fused=True)
    replay = ReplayBuffer(args.replay_lines, device)
    step, seen, started = 0, 0, time.time()
    losses = []

    def train_step(pixels, labels):
        nonlocal step
        progress = (time.time() - started) / args.train_seconds
        lr = (args.lr * min(1.0, (step + 1) / args.warmup_steps)
              * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            encoded = model.encoder(pixel_values=normalize(pixels, device)).last_hidden_state
            loss = model(encoder_outputs=(encoded,), labels=labels).loss
            if args.ctc_weight > 0:
                loss = loss + args.ctc_weight * ctc.loss(encoded, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 50 == 0:
            losses.append(round(loss.item(), 4))
        if step % 250 == 0:
            elapsed = time.time() - started
            print(f"step {step} fresh lines {seen} {elapsed:.0f}s loss {loss.item():.4f} "
                  f"lr {lr:.2e} {seen / elapsed:.0f} fresh lines/s", flush=True)

    for pixels, labels, _ in train:
        if time.time() - started >= args.train_seconds:
            break
        pixels = pixels.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        seen += len(labels)
        replay.add(pixels, labels)
        train_step(pixels, labels)
        for _ in range(args.replay):
            train_step(*replay.draw(len(labels)))
    train_seconds = time.time() - started
    print(f"trained {step} steps, {seen} lines in {train_seconds:.0f}s", flush=True)

    cer, accuracy = score(model, validation, vocab, inverse, device, num_beams=1, max_length=MAX_CHARS + 7)
    print(f"validation ({args.validation_lines} lines, seed {VALIDATION_SEED}, greedy): "
          f"CER {cer:.4f} line accuracy {accuracy:.4f}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    model.half().save_pretrained(args.out)
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    from transformers import ViTImageProcessor
    ViTImageProcessor(do_resize=True, size={"height": IMAGE_HEIGHT, "width": IMAGE_WIDTH},
                      resample=2, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                      image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(args.out)
    import transformers
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump({"parameters": parameters, "steps": step, "lines": seen,
                   "train_seconds": round(train_seconds, 1), "validation_cer": cer,
                   "validation_line_accuracy": accuracy,
                   "validation_lines": args.validation_lines, "args": vars(args),
                   "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "transformers": transformers.__version__, "loss_every_50_steps":
                   [round(x, 4) for x in losses if x is not None]}, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Greedy and beam-search generation with ONNX Runtime (CPU provider) on python/export_onnx.py's
graphs, for #15's comparison, on the GPU machine (onnxruntime 1.30 there; its CUDA provider is not).

    python3 python/ort_generate.py --onnx OUT --model-dir DIR --check DATASET_DIR --json check.json
    python3 python/ort_generate.py --onnx OUT --model-dir DIR --bench --threads 16 --json bench.json

--check: ids against HF generate() on the same pixels (the model's image processor): every image
    of the folder greedy with the model's own processors (min_length, no_repeat_ngram_size), and
    the first 8 with beam 4 under the bench protocol below. Exits 1 on any difference.
--bench: python/bench_hf.py's protocol: random pixels, exactly --new-tokens tokens (eos banned
    until then, as min_new_tokens does; no n-gram ban, length penalty 1), a wall clock around the
    whole generation, warm-up first, the median of the repeats.

The beam loop keeps, per image, the best num_beams of the 2*num_beams best continuations, as HF
does while no sequence can end; with eos banned until the last step that is all the bench needs,
and it is not HF's full finished-set bookkeeping (early stopping, length penalty on early ends).
"""
import argparse
import glob
import json
import os
import statistics
import time

import numpy
import onnxruntime


class OrtTrOCR:
    def __init__(self, onnx_dir, threads):
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder = onnxruntime.InferenceSession(os.path.join(onnx_dir, "encoder.onnx"), options, providers=providers)
        self.decoder = onnxruntime.InferenceSession(os.path.join(onnx_dir, "decoder.onnx"), options, providers=providers)
        self.meta = json.load(open(os.path.join(onnx_dir, "export.json")))

    def encode(self, pixels, copies):
        keys, values = self.encoder.run(None, {"pixel_values": pixels.astype(numpy.float32)})
        return numpy.repeat(keys, copies, axis=1), numpy.repeat(values, copies, axis=1)

    def step(self, tokens, position, past, cross):
        logits, keys, values = self.decoder.run(None, {
            "input_ids": numpy.asarray(tokens, numpy.int64).reshape(-1, 1),
            "position": numpy.array([position], numpy.int64),
            "past_keys": past[0], "past_values": past[1], "cross_keys": cross[0], "cross_values": cross[1]})
        return logits, (keys, values)

    def empty_cache(self, rows):
        shape = (self.meta["layers"], rows, self.meta["heads"], 0, self.meta["head_dim"])
        return numpy.zeros(shape, numpy.float32), numpy.zeros(shape, numpy.float32)


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=-1, keepdims=True))


def banned_ngram_tokens(sequence, size):
    """NoRepeatNGramLogitsProcessor: tokens that would repeat an n-gram of `sequence`."""
    if size <= 0 or len(sequence) + 1 < size:
        return []
    prefix = tuple(sequence[len(sequence) - size + 1:])
    return [sequence[start + size - 1] for start in range(len(sequence) - size + 1)
            if tuple(sequence[start:start + size - 1]) == prefix]


def greedy(model, pixels, max_length, min_length=0, no_repeat_ngram_size=0):
    meta = model.meta
    rows = pixels.shape[0]
    cross = model.encode(pixels, 1)
    past = model.empty_cache(rows)
    sequences = [[meta["decoder_start"]] for _ in range(rows)]
    finished = [False] * rows
    for position in range(max_length - 1):
        logits, past = model.step([s[-1] for s in sequences], position, past, cross)
        for row, sequence in enumerate(sequences):
            if finished[row]:
                sequence.append(meta["pad"])
                continue
            scores = logits[row].copy()
            if len(sequence) < min_length:
                scores[meta["eos"]] = -numpy.inf
            scores[banned_ngram_tokens(sequence, no_repeat_ngram_size)] = -numpy.inf
            sequence.append(int(scores.argmax()))
            finished[row] = sequence[-1] == meta["eos"]
        if all(finished):
            break
    return sequences


def top_k(scores, k):
    """torch.topk's order: larger first, the lower index first on ties. Every score tied with the
    k-th largest is a candidate, so the partition cannot cut a tie the wrong way; sorting only the
    candidates keeps the harness's own cost out of ORT's time (a full sort of 4 x 64044 scores per
    image and step cost more than the model's step)."""
    kth = numpy.partition(scores, scores.size - k)[scores.size - k]
    candidates = numpy.flatnonzero(scores >= kth)
    order = numpy.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]]


def beam_exact_length(model, pixels, beams, new_tokens):
    """Beam search over exactly `new_tokens` tokens, eos banned throughout (HF's min_new_tokens =
    max_new_tokens): every beam ends at the same length, so HF's best finished one is the best
    running one."""
    meta = model.meta
    images = pixels.shape[0]
    cross = model.encode(pixels, beams)
    past = model.empty_cache(images * beams)
    sequences = [[meta["decoder_start"]] for _ in range(images * beams)]
    running = numpy.full((images, beams), -1e9, numpy.float32)
    running[:, 0] = 0.0
    for position in range(new_tokens):
        logits, past = model.step([s[-1] for s in sequences], position, past, cross)
        scores = log_softmax(logits.astype(numpy.float32))
        scores[:, meta["eos"]] = -numpy.inf  # min_new_tokens = new_tokens: never before the end
        scores = (scores.reshape(images, beams, -1) + running[:, :, None]).reshape(images, -1)
        vocab = logits.shape[1]
        order, next_sequences = [], []
        for image in range(images):
            best = top_k(scores[image], beams)
            running[image] = scores[image, best]
            for flat in best:
                source = image * beams + int(flat // vocab)
                order.append(source)
                next_sequences.append(sequences[source] + [int(flat % vocab)])
        sequences = next_sequences
        past = (past[0][:, order], past[1][:, order])
    return [sequences[image * beams] for image in range(images)]


def hf_generate(hf_model, pixels, **settings):
    import torch
    with torch.inference_mode():
        return hf_model.generate(torch.from_numpy(pixels), **settings).tolist()


def up_to_eos(ids, eos):
    """A sequence without what follows its eos (HF pads finished rows)."""
    return ids[:ids.index(eos) + 1] if eos in ids else ids


def check(args, model):
    from PIL import Image
    from transformers import AutoImageProcessor, VisionEncoderDecoderModel
    hf_model = VisionEncoderDecoderModel.from_pretrained(args.model_dir).eval()
    processor = AutoImageProcessor.from_pretrained(args.model_dir)
    generation = hf_model.generation_config
    paths = sorted(glob.glob(os.path.join(args.check, "*.jpg")) + glob.glob(os.path.join(args.check, "*.png")))
    eos = model.meta["eos"]
    greedy_settings = dict(max_length=generation.max_length, min_length=generation.min_length or 0,
                           no_repeat_ngram_size=generation.no_repeat_ngram_size or 0)
    same, differ = 0, []
    for first in range(0, len(paths), 16):
        chunk = paths[first:first + 16]
        pixels = processor([Image.open(p).convert("RGB") for p in chunk], return_tensors="np").pixel_values
        ours = greedy(model, pixels, **greedy_settings)
        theirs = hf_generate(hf_model, pixels, num_beams=1, do_sample=False, **greedy_settings)
        for path, a, b in zip(chunk, ours, theirs):
            if up_to_eos(a, eos) == up_to_eos(b, eos):
                same += 1
            else:
                differ.append(os.path.basename(path))
    pixels = processor([Image.open(p).convert("RGB") for p in paths[:8]], return_tensors="np").pixel_values
    beam_ours = beam_exact_length(model, pixels, 4, args.new_tokens)
    beam_theirs = hf_generate(hf_model, pixels, num_beams=4, do_sample=False, max_new_tokens=args.new_tokens,
                              min_new_tokens=args.new_tokens, no_repeat_ngram_size=0, length_penalty=1.0,
                              early_stopping=False)
    beam_same = sum(a == b for a, b in zip(beam_ours, beam_theirs))
    record = dict(model=args.name, images=len(paths), greedy_identical=same, greedy_different=differ,
                  beam4_exact_length_identical=beam_same, beam4_images=len(beam_ours), settings=greedy_settings)
    print(json.dumps(record))
    json.dump(record, open(args.json, "w"), indent=1)
    return 0 if not differ and beam_same == len(beam_ours) else 1


def bench(args, model):
    records = []
    generator = numpy.random.default_rng(1)
    for beams in map(int, args.beams.split(",")):
        for batch in map(int, args.batches.split(",")):
            pixels = generator.standard_normal((batch, 3, model.meta["height"], model.meta["width"]), numpy.float32)
            run = (lambda: greedy(model, pixels, args.new_tokens + 1, min_length=args.new_tokens + 1)) if beams == 1 \
                else (lambda: beam_exact_length(model, pixels, beams, args.new_tokens))
            for _ in range(args.warmup):
                run()
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                ids = run()
                times.append(1000 * (time.perf_counter() - started))
                assert len(ids[0]) == args.new_tokens + 1, len(ids[0])
            ms = statistics.median(times)
            encoder_times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                model.encode(pixels, 1)
                encoder_times.append(1000 * (time.perf_counter() - started))
            encoder_ms = statistics.median(encoder_times)
            records.append(dict(engine="onnxruntime", device="cpu", model=args.name, dtype="fp32", batch=batch,
                                beams=beams, settings="plain", new_tokens=args.new_tokens, ms_per_batch=ms,
                                ms_per_image=ms / batch, images_per_s=batch * 1000.0 / ms, encoder_ms=encoder_ms, repeats=args.repeat,
                                threads=args.threads, onnxruntime=onnxruntime.__version__))
            print(f"ort {args.name} batch {batch} beams {beams} threads {args.threads}: {ms:.1f} ms "
                  f"(its encoder alone {encoder_ms:.1f} ms)", flush=True)
    json.dump(records, open(args.json, "w"), indent=1)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", required=True, help="python/export_onnx.py's output folder")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--name", default="model")
    parser.add_argument("--check", help="a folder of images: ids against HF's")
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--beams", default="1,4")
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="ORT's intra-op threads (0: its default)")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    model = OrtTrOCR(args.onnx, args.threads)
    if args.check:
        return check(args, model)
    return bench(args, model)


if __name__ == "__main__":
    raise SystemExit(main())

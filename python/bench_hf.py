#!/usr/bin/env python3
"""Times HF transformers generate() with the protocol of `trocr bench` (GPU, or CPU with --device cpu).

Eager PyTorch with its KV cache, fp32 and fp16, greedy and beam search, exactly N new tokens
(min_new_tokens = max_new_tokens), random pixels already on the GPU, CUDA events around
generate() (a wall clock on the CPU), warm-up first, the median of the repeats. Writes a JSON
list of records.
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import VisionEncoderDecoderModel


def time_generate(model, pixels, beams, new_tokens, repeat, warmup, chinese):
    kwargs = dict(num_beams=beams, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                  do_sample=False, no_repeat_ngram_size=3 if chinese else 0,
                  length_penalty=2.0 if chinese else 1.0, early_stopping=bool(chinese))
    with torch.inference_mode():
        for _ in range(warmup):
            model.generate(pixels, **kwargs)
        times = []
        for _ in range(repeat):
            if pixels.is_cuda:
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = model.generate(pixels, **kwargs)
                stop.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(stop))
            else:
                started = time.perf_counter()
                out = model.generate(pixels, **kwargs)
                times.append(1000 * (time.perf_counter() - started))
            assert out.shape[1] == new_tokens + 1, out.shape
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--dtypes", default="fp32,fp16")
    parser.add_argument("--batches", default="1,8,32,128")
    parser.add_argument("--beams", default="1,4")
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--chinese", action="store_true")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--json", required=True)
    parser.add_argument("--threads", type=int, default=0, help="torch's CPU threads (0: its default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    records = []
    for dtype_name in args.dtypes.split(","):
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
        model = VisionEncoderDecoderModel.from_pretrained(args.model_dir, dtype=dtype).to(args.device).eval()
        size = model.config.encoder.image_size
        height, width = (size, size) if isinstance(size, int) else size
        for beams in map(int, args.beams.split(",")):
            for batch in map(int, args.batches.split(",")):
                pixels = torch.randn(batch, 3, height, width, device=args.device, dtype=dtype,
                                     generator=torch.Generator(device=args.device).manual_seed(1))
                ms = time_generate(model, pixels, beams, args.new_tokens, args.repeat,
                                   args.warmup, args.chinese)
                record = dict(engine="hf-eager", device=args.device, model=args.name, dtype=dtype_name, batch=batch,
                              beams=beams, settings="trocr-chinese" if args.chinese else "plain",
                              new_tokens=args.new_tokens, ms_per_batch=ms,
                              ms_per_image=ms / batch, images_per_s=batch * 1000.0 / ms,
                              repeats=args.repeat, gpu=gpu, threads=torch.get_num_threads(),
                              torch=torch.__version__,
                              transformers=transformers.__version__)
                records.append(record)
                print(f"hf {args.name} {dtype_name} batch {batch} beams {beams}: {ms:.1f} ms, "
                      f"{record['images_per_s']:.1f} images/s", flush=True)
        del model
        torch.cuda.empty_cache()
    with open(args.json, "w") as f:
        json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()

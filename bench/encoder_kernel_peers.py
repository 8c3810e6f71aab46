"""What PyTorch's kernels take for the trocr-base encoder's work at one chunk of images, to choose
our own kernels by measurement (#17 item 1): the four linear products in fp16 and as FP8 (E4M3)
products with row-wise scales (torch._scaled_mm; which kernels it runs was not checked), and the
self-attention through each of PyTorch's fused attention back ends (cuDNN's, FlashAttention-2's,
the memory-efficient one). CUDA events after warm-up, medians; one JSON line per case.

Run on the GPU machine: python3 bench/encoder_kernel_peers.py [--images 32]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HIDDEN, INTERMEDIATE, HEADS, TOKENS = 768, 3072, 12, 577
E4M3_MAX = 448.0


def median_ms(run, repeat=20, warmup=5):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def row_quantize(x):
    """E4M3 values and fp32 scales, one per row: x ~= q * scale."""
    scale = x.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
    return (x.float() / scale).to(torch.float8_e4m3fn), scale


def linears(rows):
    for name, n, k in [("qkv", 3 * HIDDEN, HIDDEN), ("attention_output", HIDDEN, HIDDEN),
                       ("intermediate", INTERMEDIATE, HIDDEN), ("output", HIDDEN, INTERMEDIATE)]:
        x = torch.randn(rows, k, device="cuda", dtype=torch.float16)
        w = torch.randn(n, k, device="cuda", dtype=torch.float16) / k**0.5
        bias = torch.randn(n, device="cuda", dtype=torch.float16)
        flops = 2.0 * rows * n * k
        ms = median_ms(lambda: F.linear(x, w, bias))
        yield {"case": f"linear {name} fp16", "rows": rows, "n": n, "k": k, "ms": ms, "tflops": flops / ms / 1e9}
        xq, xs = row_quantize(x)
        wq, ws = row_quantize(w)
        reference = F.linear(x.float(), w.float(), bias.float())
        for out_dtype in (torch.float16, torch.bfloat16):
            try:
                run = lambda: torch._scaled_mm(xq, wq.t(), scale_a=xs, scale_b=ws.t(), bias=bias.to(out_dtype),
                                               out_dtype=out_dtype)
                y = run()
            except RuntimeError as error:
                yield {"case": f"linear {name} fp8 rowwise -> {out_dtype}", "error": str(error).splitlines()[0]}
                continue
            error = ((y.float() - reference).norm() / reference.norm()).item()
            ms = median_ms(run)
            yield {"case": f"linear {name} fp8 rowwise -> {str(out_dtype)[6:]}", "rows": rows, "n": n, "k": k,
                   "ms": ms, "tflops": flops / ms / 1e9, "relative_error": error}
        ms = median_ms(lambda: row_quantize(x))
        yield {"case": f"row quantize (torch ops) of {name}'s input", "rows": rows, "k": k, "ms": ms}


def attention(images):
    q, k, v = (torch.randn(images, HEADS, TOKENS, HIDDEN // HEADS, device="cuda", dtype=torch.float16)
               for _ in range(3))
    flops = 4.0 * images * HEADS * TOKENS * TOKENS * (HIDDEN // HEADS)
    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
        try:
            with sdpa_kernel([backend]):
                ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v))
            yield {"case": f"attention {backend.name}", "images": images, "ms": ms, "tflops": flops / ms / 1e9}
        except RuntimeError as error:
            yield {"case": f"attention {backend.name}", "error": str(error).splitlines()[0]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                      "cudnn": torch.backends.cudnn.version()}))
    for record in list(linears(args.images * TOKENS)) + list(attention(args.images)):
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes images of every PNG/JPEG/WebP flavour and what Pillow makes of them.

Run by ctest with Debian's python3-pil (the oracle) into the build tree. For each case:
CASE.png/.jpg/.webp, CASE.rgb (Image.convert("RGB") bytes) and, for each target size,
CASE.WxH.rgb (resize with BILINEAR) and CASE.WxH.f32 (HF ViTImageProcessor's rescale and
normalize, CHW float32, computed with numpy as transformers does). manifest.json lists them.
"""
import json
import os
import random
import struct
import sys
import zlib

import numpy as np
from PIL import Image

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xffffffff)


def raw_png(width, height, bit_depth, color_type, rows, palette=None):
    """A PNG with filter type 0 rows, for layouts Pillow cannot write."""
    data = b"".join(b"\x00" + row for row in rows)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(palette))
    return out + png_chunk(b"IDAT", zlib.compress(data)) + png_chunk(b"IEND", b"")


def pack_bits(values, bits):
    out, accumulator, count = bytearray(), 0, 0
    for value in values:
        accumulator = (accumulator << bits) | value
        count += bits
        if count == 8:
            out.append(accumulator)
            accumulator, count = 0, 0
    if count:
        out.append(accumulator << (8 - count))
    return bytes(out)


def noise_image(rng, mode, size):
    width, height = size
    image = Image.new("RGB", size)
    # Smooth gradients plus noise: resampling errors show on both.
    image.putdata([(min(255, (x * 255) // max(1, width - 1) + rng.randrange(16)),
                    min(255, (y * 255) // max(1, height - 1) + rng.randrange(16)),
                    rng.randrange(256)) for y in range(height) for x in range(width)])
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(size))
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(42)
    cases = []

    def add(name, payload, targets):
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(payload)
        image = Image.open(path).convert("RGB")
        with open(path + ".rgb", "wb") as f:
            f.write(image.tobytes())
        entry = {"file": name, "width": image.width, "height": image.height, "targets": []}
        for width, height in targets:
            resized = image.resize((width, height), Image.BILINEAR)
            stem = f"{path}.{width}x{height}"
            with open(stem + ".rgb", "wb") as f:
                f.write(resized.tobytes())
            pixels = np.array(resized).astype(np.float64) * (1 / 255)
            pixels = pixels.astype(np.float32)
            pixels = (pixels - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
            with open(stem + ".f32", "wb") as f:
                f.write(np.ascontiguousarray(pixels.transpose(2, 0, 1)).astype("<f4").tobytes())
            entry["targets"].append([width, height])
        cases.append(entry)

    def encoded(image, fmt, **options):
        import io
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    sizes = [(1, 1), (3, 2), (7, 5), (37, 23), (64, 64), (120, 33), (600, 40), (40, 600),
             (1000, 32), (384, 384), (500, 377)]
    targets = [(384, 384), (37, 23), (40, 40), (1, 1), (96, 18)]
    for width, height in sizes:
        image = noise_image(rng, "RGB", (width, height))
        add(f"rgb_{width}x{height}.png", encoded(image, "PNG"), targets + [(width, height)])
    for mode in ["L", "LA", "RGBA", "P", "1", "I;16"]:
        image = noise_image(rng, "RGB", (45, 31))
        if mode == "P":
            image = image.quantize(37)
            image.info["transparency"] = 3
        elif mode == "I;16":
            values = [rng.randrange(0, 600) for _ in range(45 * 31)]  # above 255 clips in PIL
            image = Image.new("I;16", (45, 31))
            image.putdata(values)
        elif mode == "RGBA":
            image = noise_image(rng, "RGBA", (45, 31))
        else:
            image = image.convert(mode)
        safe = mode.replace(";", "")
        add(f"mode_{safe}.png", encoded(image, "PNG"), [(40, 40)])
    for bits in (1, 2, 4):
        values = [rng.randrange(1 << bits) for _ in range(13 * 7)]
        rows = [pack_bits(values[y * 13:(y + 1) * 13], bits) for y in range(7)]
        add(f"gray{bits}bit.png", raw_png(13, 7, bits, 0, rows), [(40, 40)])
        palette = [rng.randrange(256) for _ in range(3 * (1 << bits))]
        add(f"palette{bits}bit.png", raw_png(13, 7, bits, 3, rows, palette), [(40, 40)])
    # Indices past a short palette read Pillow's default ramp.
    rows = [bytes(rng.randrange(256) for _ in range(9)) for _ in range(4)]
    add("short_palette.png", raw_png(9, 4, 8, 3, rows, [10, 20, 30, 40, 50, 60]), [(40, 40)])
    for channels, color_type in ((3, 2), (2, 4), (4, 6), (1, 0)):
        rows = [bytes(rng.randrange(256) for _ in range(11 * channels * 2)) for _ in range(6)]
        add(f"deep16_type{color_type}.png", raw_png(11, 6, 16, color_type, rows), [(40, 40)])
    photo = noise_image(rng, "RGB", (123, 45))
    add("baseline.jpg", encoded(photo, "JPEG", quality=90), [(384, 384), (40, 40)])
    add("progressive.jpg", encoded(photo, "JPEG", quality=75, progressive=True), [(40, 40)])
    add("subsampling444.jpg", encoded(photo, "JPEG", quality=95, subsampling=0), [(40, 40)])
    add("odd_420.jpg", encoded(noise_image(rng, "RGB", (33, 17)), "JPEG", quality=80,
                               subsampling=2), [(40, 40), (384, 384)])
    add("gray.jpg", encoded(photo.convert("L"), "JPEG", quality=85), [(40, 40)])
    add("cmyk.jpg", encoded(photo.convert("CMYK"), "JPEG", quality=90), [(40, 40)])
    # WebP: lossy and lossless, with and without alpha (semi-transparent pixels included).
    translucent = noise_image(rng, "RGBA", (37, 19))
    add("lossy.webp", encoded(photo, "WEBP", quality=80), [(40, 40)])
    add("lossless.webp", encoded(photo, "WEBP", lossless=True), [(40, 40)])
    add("lossy_alpha.webp", encoded(translucent, "WEBP", quality=70), [(40, 40)])
    add("lossless_alpha.webp", encoded(translucent, "WEBP", lossless=True, exact=True), [(40, 40)])
    add("gray.webp", encoded(photo.convert("L"), "WEBP", quality=90), [(40, 40)])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"pillow": Image.__version__, "mean": MEAN, "std": STD, "cases": cases}, f)
    print(f"{len(cases)} cases written by Pillow {Image.__version__}")


if __name__ == "__main__":
    main(sys.argv[1])

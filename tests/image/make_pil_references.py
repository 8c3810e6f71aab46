#!/usr/bin/python3
"""Writes images of every PNG/JPEG/WebP/GIF/BMP/TIFF flavour and what Pillow makes of them.

Run by ctest with Debian's python3-pil (the oracle) into the build tree. For each case:
CASE.png/.jpg/.webp/.gif/.bmp/.tif, CASE.rgb (Image.convert("RGB") bytes) and, for each target size,
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


def gif_lzw(indices, minimum_code_size=8):
    """Indices as a GIF LZW stream that never grows its table past 9-bit codes: a clear code
    every 250 literals (a valid, uncompressed encoding, for layouts Pillow cannot write)."""
    clear, end = 1 << minimum_code_size, (1 << minimum_code_size) + 1
    codes = [clear]
    for i, index in enumerate(indices):
        if i and i % 250 == 0:
            codes.append(clear)
        codes.append(index)
    codes.append(end)
    bits, count, out = 0, 0, bytearray()
    for code in codes:
        bits |= code << count
        count += minimum_code_size + 1
        while count >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            count -= 8
    if count:
        out.append(bits & 0xFF)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return bytes([minimum_code_size]) + blocks + b"\x00"


def raw_gif(screen, palette, frame_box, indices, transparency=None, background=0):
    """A one-frame GIF89a: logical screen `screen`, global palette (a power of two of RGB
    triples, or None), the frame at frame_box = (left, top, width, height)."""
    width, height = screen
    flags = 0
    table = b""
    if palette is not None:
        size_bits = max(1, (len(palette) - 1).bit_length())
        flags = 0x80 | (size_bits - 1)
        table = bytes(c for color in palette for c in color) + b"\x00" * (3 * ((1 << size_bits) - len(palette)))
    out = b"GIF89a" + struct.pack("<HHBBB", width, height, flags, background, 0) + table
    if transparency is not None:
        out += b"\x21\xf9\x04" + bytes([1]) + struct.pack("<H", 0) + bytes([transparency]) + b"\x00"
    left, top, frame_width, frame_height = frame_box
    out += b"\x2c" + struct.pack("<HHHHB", left, top, frame_width, frame_height, 0)
    return out + gif_lzw(indices) + b"\x3b"


def raw_bmp(width, height, bits, rows, palette=None, header_size=40, compression=0, masks=None, top_down=False):
    """A BMP with the given header size (12: the core header), rows bottom-up as stored."""
    stride = ((bits * width + 31) // 32) * 4
    pixels = b"".join(row + b"\x00" * (stride - len(row)) for row in rows)
    if header_size == 12:
        header = struct.pack("<IHHHH", 12, width, height, 1, bits)
        table = b"".join(bytes([b, g, r]) for r, g, b in (palette or []))
    else:
        header = struct.pack("<IiiHHIIiiII", header_size, width, -height if top_down else height, 1, bits,
                             compression, len(pixels), 2835, 2835, len(palette or []), 0)
        if masks is not None and header_size >= 56:
            header += struct.pack("<IIII", *masks)
        header += b"\x00" * (header_size - len(header))
        if masks is not None and header_size == 40:
            header += struct.pack("<III", *masks[:3])
        table = b"".join(bytes([b, g, r, 0]) for r, g, b in (palette or []))
    offset = 14 + len(header) + len(table)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + table + pixels


def raw_tiff(width, height, bits, samples, photometric, rows, colormap=None, extra_samples=None):
    """An uncompressed little-endian TIFF, one strip, for layouts Pillow cannot write."""
    data = b"".join(rows)
    entries = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * samples), (259, 3, [1]),
               (262, 3, [photometric]), (273, 4, [0]), (277, 3, [samples]), (278, 4, [height]),
               (279, 4, [len(data)])]
    if colormap is not None:
        entries.append((320, 3, colormap))
    if extra_samples is not None:
        entries.append((338, 3, extra_samples))
    entries.sort()
    sizes = {3: 2, 4: 4}
    ifd_size = 2 + 12 * len(entries) + 4
    extra_offset = 8 + ifd_size
    extra = b""
    packed = []
    for tag, kind, values in entries:
        payload = b"".join(struct.pack("<H" if kind == 3 else "<I", v) for v in values)
        if len(payload) <= 4:
            packed.append((tag, kind, len(values), payload.ljust(4, b"\x00"), None))
        else:
            packed.append((tag, kind, len(values), struct.pack("<I", extra_offset + len(extra)), None))
            extra += payload
            if len(extra) % 2:
                extra += b"\x00"
    data_offset = extra_offset + len(extra)
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value, _ in packed:
        if tag == 273:
            value = struct.pack("<I", data_offset)
        out += struct.pack("<HHI", tag, kind, count) + value
    return out + struct.pack("<I", 0) + extra + data


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
    # GIF (first frame): Pillow's own files, and frames smaller than or past the logical screen.
    quantized = photo.quantize(37)
    add("palette.gif", encoded(quantized, "GIF"), [(40, 40)])
    add("progressive_rows.gif", encoded(quantized, "GIF", interlace=False), [(40, 40)])
    add("gray.gif", encoded(photo.convert("L"), "GIF"), [(40, 40)])
    transparent = photo.quantize(16)
    add("transparent.gif", encoded(transparent, "GIF", transparency=5), [(40, 40)])
    second = noise_image(rng, "RGB", (123, 45)).quantize(16)
    add("animated.gif", encoded(transparent, "GIF", save_all=True, append_images=[second], duration=100),
        [(40, 40)])
    colors = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(4)]
    small = [rng.randrange(4) for _ in range(11 * 5)]
    add("offset_frame.gif", raw_gif((20, 10), colors, (3, 2, 11, 5), small), [(40, 40)])
    add("offset_frame_transparent.gif", raw_gif((20, 10), colors, (3, 2, 11, 5), small, transparency=2),
        [(40, 40)])
    add("frame_past_screen.gif", raw_gif((8, 6), colors, (5, 4, 9, 7), [rng.randrange(4) for _ in range(63)]),
        [(40, 40)])
    add("short_palette.gif", raw_gif((9, 4), colors[:2], (0, 0, 9, 4), [rng.randrange(7) for _ in range(36)]),
        [(40, 40)])
    add("no_palette.gif", raw_gif((9, 4), None, (0, 0, 9, 4), [rng.randrange(256) for _ in range(36)]), [(40, 40)])
    # BMP: what Pillow writes (1, 8-bit gray and palette, 24 and 32-bit), and layouts it only reads.
    for mode in ["1", "L", "P", "RGB", "RGBA"]:
        image = noise_image(rng, "RGBA" if mode == "RGBA" else "RGB", (45, 31))
        image = image.quantize(37) if mode == "P" else image.convert(mode)
        add(f"mode_{mode}.bmp", encoded(image, "BMP"), [(40, 40)])
    palette16 = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(16)]
    values = [rng.randrange(16) for _ in range(13 * 7)]
    add("palette4bit.bmp", raw_bmp(13, 7, 4, [pack_bits(values[y * 13:(y + 1) * 13], 4) for y in range(7)],
                                   palette16), [(40, 40)])
    add("palette4bit_short.bmp", raw_bmp(13, 7, 4, [pack_bits(values[y * 13:(y + 1) * 13], 4) for y in range(7)],
                                         palette16[:5]), [(40, 40)])
    words = [rng.randrange(1 << 16) for _ in range(11 * 6)]
    rows16 = [b"".join(struct.pack("<H", w) for w in words[y * 11:(y + 1) * 11]) for y in range(6)]
    add("rgb555.bmp", raw_bmp(11, 6, 16, rows16), [(40, 40)])
    add("rgb565.bmp", raw_bmp(11, 6, 16, rows16, compression=3, masks=(0xF800, 0x7E0, 0x1F, 0)), [(40, 40)])
    rows32 = [bytes(rng.randrange(256) for _ in range(7 * 4)) for _ in range(5)]
    add("rgba_v5.bmp", raw_bmp(7, 5, 32, rows32, header_size=124, compression=3,
                               masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)), [(40, 40)])
    add("abgr_v4.bmp", raw_bmp(7, 5, 32, rows32, header_size=108, compression=3,
                               masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF)), [(40, 40)])
    rows24 = [bytes(rng.randrange(256) for _ in range(9 * 3)) for _ in range(4)]
    add("top_down.bmp", raw_bmp(9, 4, 24, rows24, top_down=True), [(40, 40)])
    add("core_header.bmp", raw_bmp(9, 4, 24, rows24, header_size=12), [(40, 40)])
    # TIFF (first page): what Pillow writes, compressed as it can, and layouts it only reads.
    for mode, compressions in [("1", ["raw", "group4", "packbits"]), ("L", ["raw", "tiff_lzw", "tiff_deflate"]),
                               ("P", ["raw", "tiff_lzw"]), ("RGB", ["raw", "tiff_lzw", "packbits", "jpeg"]),
                               ("RGBA", ["raw", "tiff_deflate"]), ("LA", ["raw", "tiff_lzw"]), ("CMYK", ["raw"]),
                               ("I;16", ["raw"])]:
        image = noise_image(rng, "RGBA" if mode == "RGBA" else "RGB", (45, 31))
        if mode == "P":
            image = image.quantize(37)
        elif mode == "I;16":
            image = Image.new("I;16", (45, 31))
            image.putdata([rng.randrange(0, 600) for _ in range(45 * 31)])
        else:
            image = image.convert(mode)
        for compression in compressions:
            add(f"mode_{mode.replace(';', '')}_{compression}.tif", encoded(image, "TIFF", compression=compression),
                [(40, 40)])
    pages = [noise_image(rng, "RGB", (20, 10)), noise_image(rng, "RGB", (30, 12))]
    add("two_pages.tif", encoded(pages[0], "TIFF", save_all=True, append_images=pages[1:]), [(40, 40)])
    for bits in (2, 4, 8):
        values = [rng.randrange(1 << bits) for _ in range(13 * 7)]
        rows = [pack_bits(values[y * 13:(y + 1) * 13], bits) for y in range(7)]
        add(f"gray{bits}bit_min_is_white.tif", raw_tiff(13, 7, bits, 1, 0, rows), [(40, 40)])
        add(f"gray{bits}bit.tif", raw_tiff(13, 7, bits, 1, 1, rows), [(40, 40)])
        colormap = [rng.randrange(1 << 16) for _ in range(3 << bits)]
        add(f"palette{bits}bit.tif", raw_tiff(13, 7, bits, 1, 3, rows, colormap=colormap), [(40, 40)])
    rows = [bytes(rng.randrange(256) for _ in range(9 * 4)) for _ in range(5)]
    add("premultiplied.tif", raw_tiff(9, 5, 8, 4, 2, rows, extra_samples=[1]), [(40, 40)])
    add("rgbx.tif", raw_tiff(9, 5, 8, 4, 2, rows, extra_samples=[0]), [(40, 40)])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"pillow": Image.__version__, "mean": MEAN, "std": STD, "cases": cases}, f)
    print(f"{len(cases)} cases written by Pillow {Image.__version__}")


if __name__ == "__main__":
    main(sys.argv[1])

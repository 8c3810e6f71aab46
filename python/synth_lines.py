#!/usr/bin/env python3
"""Renders synthetic Chinese text-line images with their labels, deterministically from a seed.

Characters: GB2312 level 1 (3755 hanzi, enumerated from the codec), digits, Latin letters and
common Chinese and ASCII punctuation. Lines of 1 to 25 characters in several CJK fonts and sizes,
ink and paper colours, slight rotation, blur, noise, JPEG artefacts and padding.

Writes the layout trocr-chinese uses, NAME.jpg with NAME.txt beside it:

    /usr/bin/python3 python/synth_lines.py --out data/eval --count 400 --seed 20261124

Sample i depends only on (seed, i), so any worker split renders the same lines. Needs Pillow and
numpy (Debian: python3-pil python3-numpy) and CJK fonts (fonts-wqy-microhei, fonts-wqy-zenhei,
fonts-arphic-ukai, fonts-arphic-uming), or --fonts DIR with subset copies (subset_fonts.py).
"""
import argparse
import io
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# (file, face index in the collection): regular faces only; the bitmap-strike "Sharp" face of
# Zen Hei and the HK/TW variants add little beyond these.
SYSTEM_FONTS = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 1),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/ukai.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
]

DIGITS = "0123456789"
LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
CHINESE_PUNCTUATION = "，。、；：？！“”‘’（）《》【】—…·"
ASCII_PUNCTUATION = ".,;:!?'\"()-/%+&#*[]"


def gb2312_level1():
    """The 3755 level-1 hanzi: rows 16-55 of GB2312, in code order."""
    chars = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # row 55 ends early
    return chars


def charset():
    """Every character a label may contain, in vocabulary order."""
    return (gb2312_level1() + list(DIGITS) + list(LATIN) + list(CHINESE_PUNCTUATION)
            + list(ASCII_PUNCTUATION))


def font_list(fonts_dir):
    """(path, index) pairs: the system fonts, or every .ttf/.ttc/.otf in fonts_dir."""
    if fonts_dir:
        names = sorted(n for n in os.listdir(fonts_dir) if n.lower().endswith((".ttf", ".ttc", ".otf")))
        found = [(os.path.join(fonts_dir, n), 0) for n in names]
    else:
        found = [(path, index) for path, index in SYSTEM_FONTS if os.path.exists(path)]
    if not found:
        sys.exit("synth_lines: no CJK fonts found; install fonts-wqy-microhei or pass --fonts DIR")
    return found


class LineRenderer:
    def __init__(self, fonts_dir=None):
        self.hanzi = gb2312_level1()
        self.fonts = font_list(fonts_dir)
        self._font_cache = {}

    def font(self, index, size):
        key = (index, size)
        if key not in self._font_cache:
            path, face = self.fonts[index]
            self._font_cache[key] = ImageFont.truetype(path, size, index=face)
        return self._font_cache[key]

    def text(self, rng, longest=25):
        """A label of 1 to `longest` characters: mostly hanzi, with numbers, Latin and
        punctuation."""
        length = rng.randint(1, longest)
        style = rng.random()
        out = []
        while len(out) < length:
            r = rng.random()
            if style < 0.1:  # Latin/number heavy lines (codes, prices, dates)
                pool = LATIN if r < 0.5 else DIGITS if r < 0.85 else ASCII_PUNCTUATION
            elif r < 0.82:
                pool = self.hanzi
            elif r < 0.90:
                pool = CHINESE_PUNCTUATION
            elif r < 0.95:
                pool = DIGITS
            elif r < 0.98:
                pool = LATIN
            else:
                pool = ASCII_PUNCTUATION
            if pool is DIGITS and rng.random() < 0.6:
                out.extend(rng.choice(DIGITS) for _ in range(rng.randint(1, 4)))
            else:
                out.append(rng.choice(pool))
        return "".join(out[:length])

    def render(self, text, rng):
        """An RGB image of `text`, degraded, as JPEG bytes (the last degradation)."""
        font = self.font(rng.randrange(len(self.fonts)), rng.randint(22, 44))
        dark = rng.randint(0, 90)
        light = rng.randint(170, 255)
        tint = lambda base: tuple(max(0, min(255, base + rng.randint(-25, 25))) for _ in range(3))
        ink, paper = tint(dark), tint(light)
        if rng.random() < 0.08:
            ink, paper = paper, ink
        spacing = rng.uniform(-0.05, 0.25) * font.size if rng.random() < 0.3 else 0.0
        advances = [font.getlength(ch) + spacing for ch in text]
        ascent, descent = font.getmetrics()
        pad_x = [rng.randint(0, font.size // 2) for _ in range(2)]
        pad_y = [rng.randint(0, font.size // 3) for _ in range(2)]
        width = int(sum(advances) + pad_x[0] + pad_x[1]) + 2
        height = ascent + descent + pad_y[0] + pad_y[1] + 2
        image = Image.new("RGB", (max(width, 4), max(height, 4)), paper)
        draw = ImageDraw.Draw(image)
        if spacing == 0.0:
            draw.text((pad_x[0], pad_y[0]), text, font=font, fill=ink)
        else:
            x = float(pad_x[0])
            for ch, advance in zip(text, advances):
                draw.text((x, pad_y[0]), ch, font=font, fill=ink)
                x += advance
        if rng.random() < 0.5:
            image = image.rotate(rng.uniform(-2.0, 2.0), resample=Image.BILINEAR, expand=True,
                                 fillcolor=paper)
        if rng.random() < 0.4:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        if rng.random() < 0.5:
            noise_rng = np.random.default_rng(rng.getrandbits(32))
            pixels = np.asarray(image, dtype=np.float32)
            noise = noise_rng.standard_normal(pixels.shape, dtype=np.float32)
            pixels += noise * rng.uniform(2.0, 14.0)
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(35, 95))
        return buffer.getvalue()

    def sample(self, seed, index, text=None, longest=25):
        """(label, JPEG bytes) of line `index` of the set made with `seed`; `text` replaces the
        random label (for sample images with chosen words)."""
        rng = random.Random(seed * 1_000_003 + index)
        text = self.text(rng, longest) if text is None else text
        return text, self.render(text, rng)


def write_dataset(out, count, seed, fonts_dir, texts=None):
    os.makedirs(out, exist_ok=True)
    renderer = LineRenderer(fonts_dir)
    for index in range(count if texts is None else len(texts)):
        text, jpeg = renderer.sample(seed, index, None if texts is None else texts[index])
        name = f"{index:06d}"
        with open(os.path.join(out, name + ".jpg"), "wb") as f:
            f.write(jpeg)
        with open(os.path.join(out, name + ".txt"), "w", encoding="utf-8") as f:
            f.write(text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for NAME.jpg + NAME.txt pairs")
    parser.add_argument("--count", type=int, help="random lines to render")
    parser.add_argument("--text", action="append", help="render this text instead (repeatable)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--fonts", help="folder of font files instead of the system CJK fonts")
    args = parser.parse_args()
    if (args.count is None) == (args.text is None):
        parser.error("give --count or --text")
    known = set(charset())
    for text in args.text or []:
        if not text or len(text) > 25 or not set(text) <= known:
            parser.error(f"--text {text!r}: 1 to 25 characters of the character set")
    write_dataset(args.out, args.count, args.seed, args.fonts, args.text)


if __name__ == "__main__":
    main()

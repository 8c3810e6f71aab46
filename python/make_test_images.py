#!/usr/bin/python3
"""Writes the small images the goldens are computed on (tests/data/images).

Deterministic: run with Debian's python3-pil; the files are committed, so HF on the GPU
machine and our engines read the same bytes.
"""
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def text_line(text, size, ink, paper, font_size):
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, font_size) if os.path.exists(FONT) else ImageFont.load_default()
    draw.text((4, 2), text, fill=ink, font=font)
    return image


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1234)
    text_line("识别文字 OCR 2024", (320, 48), (20, 20, 30), (245, 240, 230), 32).save(
        os.path.join(out, "line_rgb.png"))
    text_line("中文行", (96, 40), (0, 0, 0), (255, 255, 255), 28).convert("L").save(
        os.path.join(out, "line_gray.png"))
    noise = Image.new("RGBA", (50, 30))
    noise.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(50 * 30)])
    noise.save(os.path.join(out, "noise_rgba.png"))
    text_line("数字 12345", (200, 32), (200, 0, 0), (255, 255, 200), 22).quantize(16).save(
        os.path.join(out, "palette.png"))
    text_line("宽的文本行 wide text line 0123456789", (600, 40), (30, 30, 90), (230, 230, 230),
              26).save(os.path.join(out, "wide.jpg"), quality=85)
    tiny = Image.new("RGB", (7, 5))
    tiny.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(35)])
    tiny.save(os.path.join(out, "tiny.png"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/images")

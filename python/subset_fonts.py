#!/usr/bin/env python3
"""Copies the CJK fonts synth_lines.py uses, cut down to its character set, into one folder.

The GPU machine has no CJK fonts and no apt; the subsets are small enough to travel with the
working tree (carry the folder), and render the same glyphs as the full fonts:

    /usr/bin/python3 python/subset_fonts.py .fonts      # needs Debian's python3-fonttools
"""
import os
import sys

from fontTools import subset
from fontTools.ttLib import TTFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synth_lines import SYSTEM_FONTS, charset  # noqa: E402


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".fonts"
    os.makedirs(out, exist_ok=True)
    options = subset.Options()
    options.hinting = True
    options.layout_features = ["*"]
    options.notdef_outline = True
    codepoints = [ord(ch) for ch in charset()]
    for number, (path, face) in enumerate(SYSTEM_FONTS):
        font = TTFont(path, fontNumber=face)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=codepoints)
        subsetter.subset(font)
        name = f"{number}-{os.path.splitext(os.path.basename(path))[0]}-{face}.ttf"
        font.save(os.path.join(out, name))
        print(name, os.path.getsize(os.path.join(out, name)))


if __name__ == "__main__":
    main()

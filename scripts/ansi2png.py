#!/usr/bin/env python3
"""Renders a terminal capture with ANSI colours (tmux capture-pane -e -p) to a PNG, for the
README's screenshots: python3 scripts/ansi2png.py IN.ansi OUT.png (needs Pillow and DejaVu Sans
Mono)."""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
BASE16 = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188),
          (17, 168, 205), (229, 229, 229), (102, 102, 102), (241, 76, 76), (35, 209, 139),
          (245, 245, 67), (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255)]
FG, BG = (220, 220, 220), (24, 24, 28)


def xterm(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        lv = [0, 95, 135, 175, 215, 255]
        return (lv[n // 36], lv[n // 6 % 6], lv[n % 6])
    g = 8 + 10 * (n - 232)
    return (g, g, g)


def main(src, dst):
    text = open(src, encoding="utf-8").read().rstrip("\n").split("\n")
    font = ImageFont.truetype(FONT, SIZE)
    bold = ImageFont.truetype(BOLD, SIZE)
    cw = int(font.getlength("M"))
    ch = SIZE + 4
    width = max(len(re.sub(r"\x1b\[[0-9;]*m", "", l)) for l in text)
    img = Image.new("RGB", (cw * width + 16, ch * len(text) + 16), BG)
    d = ImageDraw.Draw(img)
    for y, line in enumerate(text):
        fg, bg, b, rev, ul = FG, None, False, False, False
        x = 0
        for tok in re.split(r"(\x1b\[[0-9;]*m)", line):
            m = re.fullmatch(r"\x1b\[([0-9;]*)m", tok)
            if m:
                codes = [int(c) if c else 0 for c in m.group(1).split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, b, rev, ul = FG, None, False, False, False
                    elif c == 1:
                        b = True
                    elif c == 4:
                        ul = True
                    elif c == 7:
                        rev = True
                    elif c == 39:
                        fg = FG
                    elif c == 49:
                        bg = None
                    elif c in (38, 48) and i + 1 < len(codes):
                        if codes[i + 1] == 2:
                            col = tuple(codes[i + 2:i + 5])
                            i += 4
                        else:
                            col = xterm(codes[i + 2])
                            i += 2
                        if c == 38:
                            fg = col
                        else:
                            bg = col
                    elif 30 <= c <= 37:
                        fg = BASE16[c - 30]
                    elif 40 <= c <= 47:
                        bg = BASE16[c - 40]
                    elif 90 <= c <= 97:
                        fg = BASE16[c - 82]
                    i += 1
                continue
            for chr_ in tok:
                f, g = (bg or BG, fg) if rev else (fg, bg)
                px, py = 8 + x * cw, 8 + y * ch
                if g is not None or rev:
                    d.rectangle([px, py, px + cw - 1, py + ch - 1], fill=(g if not rev else fg) if not rev else fg)
                if rev:
                    d.rectangle([px, py, px + cw - 1, py + ch - 1], fill=fg)
                    d.text((px, py + 1), chr_, font=bold if b else font, fill=bg or BG)
                else:
                    d.text((px, py + 1), chr_, font=bold if b else font, fill=f)
                if ul:
                    d.line([px, py + ch - 2, px + cw - 1, py + ch - 2], fill=f)
                x += 1
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

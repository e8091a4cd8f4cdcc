#!/usr/bin/python3
"""Writes the hostile-image corpus of tests/test_image_corpus.cpp into tests/hostile_images/.

The files are committed (CI needs no Python); rerun this after changing it. Needs Debian's
python3-pil and python3-numpy (hence /usr/bin/python3). Deterministic: fixed seeds, and PIL
writes no timestamps into JPEG or PNG.

Each file name says what the test expects: ok_* files decode, bad_* files are skipped with one
warning. notes.txt is not an image name and is never scanned.
"""
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "hostile_images"


def smooth(w, h, channels, seed):
    """A smooth w x h image (compresses like a photo), uint8 [h, w, channels]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [127.5 + 120 * np.sin(0.05 * (c + 1) * x + 0.07 * y + seed + c) for c in range(channels)]
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    files = {}
    # One 40x30 picture in many encodings: the test compares each decode with ok_rgb.png.
    rgb = Image.fromarray(smooth(40, 30, 3, 1), "RGB")
    gray = rgb.convert("L")
    files["ok_rgb.png"] = encode(rgb, "PNG")
    files["ok_rgb.jpg"] = encode(rgb, "JPEG", quality=90)
    files["ok_progressive.jpg"] = encode(rgb, "JPEG", quality=90, progressive=True)
    # K = 0 and C, M, Y = 255 - R, G, B; PIL marks it Adobe (inverted), as Photoshop does.
    files["ok_cmyk.jpg"] = encode(rgb.convert("CMYK"), "JPEG", quality=90)
    files["ok_gray.jpg"] = encode(gray, "JPEG", quality=90)
    files["ok_gray16.png"] = encode(Image.fromarray(np.asarray(gray).astype(np.uint16) * 257, "I;16"), "PNG")
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(smooth(40, 30, 1, 9)[:, :, 0], "L"))
    files["ok_rgba.png"] = encode(rgba, "PNG")
    files["ok_palette.png"] = encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG")
    files["ok_7x5.png"] = encode(Image.fromarray(smooth(7, 5, 3, 6), "RGB"), "PNG")
    files["ok_3000x40.jpg"] = encode(Image.fromarray(smooth(3000, 40, 3, 7), "RGB"), "JPEG", quality=80)

    jpg, png = files["ok_rgb.jpg"], files["ok_rgb.png"]
    files["bad_truncated.jpg"] = jpg[: len(jpg) // 2]
    files["bad_truncated.png"] = png[: len(png) // 2]
    # A valid PNG header claiming 100000 x 100000 RGB pixels (30 GB decoded), with a tiny body.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    files["bad_huge_header.png"] = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                                    + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    # 16000 x 16000 passes stb_image's own limit (1 GB) and would allocate 768 MB: ember's limit refuses it.
    ihdr = struct.pack(">IIBBBBB", 16000, 16000, 8, 2, 0, 0, 0)
    files["bad_large_header.png"] = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                                     + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    files["bad_empty.png"] = b""
    files["bad_random.jpg"] = np.random.default_rng(8).integers(0, 256, 512, dtype=np.uint8).tobytes()
    files["bad_text.png"] = b"This is a text file with an image extension.\n"
    files["notes.txt"] = b"Not an image name: the folder scan never lists this file.\n"
    for name, data in sorted(files.items()):
        (OUT / name).write_bytes(data)
        print(f"{name:24s} {len(data):7d} bytes")


if __name__ == "__main__":
    main()

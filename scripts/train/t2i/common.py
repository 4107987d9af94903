"""Shared helpers for scripts/train/t2i: paths, card I/O, time-budgeted learning rate, PNG writing."""
import json
import math
import os
import struct
import sys
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import fmnist  # noqa: E402,F401

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CKPT_DIR = os.path.join(ROOT, "checkpoints", "t2i")


def command_line():
    return "/usr/bin/python3 " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def lr_at(base, frac, step, warmup, min_frac=0.05):
    return (
        base
        * min(1.0, (step + 1) / warmup)
        * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
    )


def read_card(path):
    extra = {"model.json": ""}
    m = torch.jit.load(path, _extra_files=extra)
    return m, json.loads(extra["model.json"] or "{}")


def save_scripted(module, path, card):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    torch.jit.save(module, path, _extra_files={"model.json": json.dumps(card, indent=1)})
    print(f"saved {path} ({os.path.getsize(path) / 1e6:.2f} MB)", flush=True)


def write_png(path, img):
    """img: float tensor [H,W] in [0,1] (grey) -> 8-bit PNG."""
    a = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    h, w = a.shape
    raw = b"".join(b"\x00" + a[i].tobytes() for i in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def grid(x, nrow, pad=2, scale=2):
    """x [N,1,28,28] in [-1,1] -> [H,W] in [0,1], rows of nrow images, upscaled by `scale`."""
    n = x.shape[0]
    ncol = nrow
    nr = (n + ncol - 1) // ncol
    hh, ww = x.shape[2], x.shape[3]
    out = torch.ones(nr * (hh + pad) + pad, ncol * (ww + pad) + pad)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (hh + pad) : pad + r * (hh + pad) + hh, pad + c * (ww + pad) : pad + c * (ww + pad) + ww] = (
            x[i, 0] + 1
        ) / 2
    if scale > 1:
        out = out.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    return out

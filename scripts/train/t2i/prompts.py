"""Attributes, prompts, vocabulary and tokenizer of the small Fashion-MNIST text-to-image stack.

Attributes are measured on the image itself (pixels p in [0,1], i.e. (x + 1) / 2 for x in [-1,1]):
  object pixel  p > OBJECT_THRESHOLD (0.2; the background of Fashion-MNIST is exactly 0, and 0.2 keeps
                decoder/sampler background noise from counting as object)
  size          fraction of the 784 pixels that are object pixels
  brightness    mean p over the object pixels (0 if there are none)
Per class, the tertile thresholds [t1, t2] of each attribute over the TRAIN split (torch.quantile, linear
interpolation, at 1/3 and 2/3; size thresholds are then moved to the half pixel count below, (ceil(784 t) - 0.5) / 784,
which changes no decision but is safe in float32) give the words: index = (v >= t1) + (v >= t2) into
  size: small / medium / large        brightness: dark / grey / bright
A full prompt is "a {size} {brightness} {class name lower-case}"; an omitted attribute word means "any".

Tokenizer (the TypeScript side reimplements it exactly): lower-case; split on whitespace; strip every
character other than [a-z/-] from each word; drop empty words; map each word to its vocabulary id,
unknown words to 1 (<unk>); id 0 is <pad>; truncate / right-pad with 0 to MAX_LEN.
"""
import json
import math
import os
import re
import sys
from typing import Dict, List, Optional, Sequence

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fmnist  # noqa: E402

OBJECT_THRESHOLD = 0.2
MAX_LEN = 8
PAD_ID = 0
UNK_ID = 1
SIZE_WORDS = ["small", "medium", "large"]
BRIGHT_WORDS = ["dark", "grey", "bright"]
CLASS_NAMES = [c.lower() for c in fmnist.CLASSES]  # "t-shirt/top", ..., "ankle boot"
P_DROP = 0.3

VOCAB: List[str] = ["<pad>", "<unk>", "a"] + SIZE_WORDS + BRIGHT_WORDS
for _c in CLASS_NAMES:
    for _w in _c.split():
        if _w not in VOCAB:
            VOCAB.append(_w)
WORD_TO_ID: Dict[str, int] = {w: i for i, w in enumerate(VOCAB)}
TOKENIZER_RULE = (
    "lowercase; split on whitespace; strip characters other than [a-z/-] from each word; "
    "drop empty words; word -> vocab id, unknown -> 1 (<unk>); pad id 0; truncate/right-pad to max_len"
)

_STRIP = re.compile(r"[^a-z/-]")


def tokenize_words(text: str) -> List[str]:
    out = []
    for w in text.lower().split():
        w = _STRIP.sub("", w)
        if w:
            out.append(w)
    return out


def tokenize(texts: Sequence[str], max_len: int = MAX_LEN) -> torch.Tensor:
    rows = []
    for t in texts:
        ids = [WORD_TO_ID.get(w, UNK_ID) for w in tokenize_words(t)][:max_len]
        rows.append(ids + [PAD_ID] * (max_len - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)


def measure(x: torch.Tensor, thr: float = OBJECT_THRESHOLD):
    """x [N,1,28,28] in [-1,1] -> (size [N], brightness [N]) as defined above."""
    p = ((x.float() + 1.0) * 0.5).flatten(1)
    m = (p > thr).float()
    cnt = m.sum(1)
    size = cnt / p.shape[1]
    bright = (p * m).sum(1) / cnt.clamp_min(1.0)
    return size, bright


def compute_thresholds(x: torch.Tensor, y: torch.Tensor) -> Dict[str, Dict[str, List[float]]]:
    size, bright = measure(x)
    q = torch.tensor([1.0 / 3.0, 2.0 / 3.0], dtype=torch.float64)
    th = {"size": {}, "brightness": {}}
    for c, name in enumerate(CLASS_NAMES):
        sel = y == c
        # size is a multiple of 1/784: store half-integer pixel counts so "v >= t" is float-safe
        cnt_q = torch.quantile(size[sel].double() * 784.0, q)
        th["size"][name] = [round((math.ceil(float(v) - 1e-9) - 0.5) / 784.0, 8) for v in cnt_q]
        th["brightness"][name] = [round(float(v), 6) for v in torch.quantile(bright[sel].double(), q)]
    return th


_TH_CACHE: Optional[Dict] = None
TH_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "thresholds.json")


def thresholds() -> Dict[str, Dict[str, List[float]]]:
    """Per-class tertile thresholds over the train split (cached in scripts/train/t2i/thresholds.json)."""
    global _TH_CACHE
    if _TH_CACHE is None:
        if os.path.exists(TH_PATH):
            with open(TH_PATH) as f:
                _TH_CACHE = json.load(f)
        else:
            x, y = fmnist.load("train")
            _TH_CACHE = compute_thresholds(x, y)
            with open(TH_PATH, "w") as f:
                json.dump(_TH_CACHE, f, indent=1)
    return _TH_CACHE


def attribute_ids(x: torch.Tensor, y: torch.Tensor):
    """-> (size word index [N] in 0..2, brightness word index [N] in 0..2) by the per-class tertile rule."""
    th = thresholds()
    size, bright = measure(x)
    ts = torch.tensor([th["size"][n] for n in CLASS_NAMES], dtype=torch.float32)[y]
    tb = torch.tensor([th["brightness"][n] for n in CLASS_NAMES], dtype=torch.float32)[y]
    si = (size >= ts[:, 0]).long() + (size >= ts[:, 1]).long()
    bi = (bright >= tb[:, 0]).long() + (bright >= tb[:, 1]).long()
    return si, bi


def prompt(cls: int, size: int = -1, bright: int = -1) -> str:
    """size / bright: word index 0..2, or -1 to omit the word."""
    words = ["a"]
    if size >= 0:
        words.append(SIZE_WORDS[size])
    if bright >= 0:
        words.append(BRIGHT_WORDS[bright])
    words.append(CLASS_NAMES[cls])
    return " ".join(words)


def variant_index(cls, size, bright):
    """Index of (class, size or -1, brightness or -1) among the 160 prompt variants (tensors or ints)."""
    return cls * 16 + (size + 1) * 4 + (bright + 1)


def all_variants():
    """The 160 prompt variants in variant_index order: list of (cls, size, bright, text)."""
    out = []
    for c in range(10):
        for s in range(-1, 3):
            for b in range(-1, 3):
                out.append((c, s, b, prompt(c, s, b)))
    return out


def drop_attributes(si: torch.Tensor, bi: torch.Tensor, gen: torch.Generator, p: float = P_DROP):
    """Replace each attribute index with -1 independently with probability p."""
    ds = torch.rand(si.shape[0], generator=gen) < p
    db = torch.rand(si.shape[0], generator=gen) < p
    return torch.where(ds, torch.full_like(si, -1), si), torch.where(db, torch.full_like(bi, -1), bi)


def attributes_card() -> Dict:
    th = thresholds()
    return {
        "object_threshold": OBJECT_THRESHOLD,
        "pixel_scale": "p = (x + 1) / 2 for x in [-1,1]; object pixel: p > object_threshold",
        "size": {
            "words": SIZE_WORDS,
            "measure": "fraction of the 784 pixels that are object pixels",
            "thresholds": th["size"],
        },
        "brightness": {
            "words": BRIGHT_WORDS,
            "measure": "mean p over object pixels (0 if none)",
            "thresholds": th["brightness"],
        },
        "rule": "per class: word index = (v >= t1) + (v >= t2), thresholds [t1, t2] = train-split tertiles of that "
        "class",
        "prompt": "a {size} {brightness} {class}; each attribute word may be omitted (= any); "
        "training dropped each word independently with probability %g" % P_DROP,
    }


if __name__ == "__main__":
    x, y = fmnist.load("train")
    th = compute_thresholds(x, y)
    with open(TH_PATH, "w") as f:
        json.dump(th, f, indent=1)
    print(json.dumps(th, indent=1))
    print("vocab", VOCAB)
    si, bi = attribute_ids(x, y)
    print("size word counts", torch.bincount(si).tolist(), "brightness", torch.bincount(bi).tolist())
    print(
        tokenize(
            ["a Small DARK  Sandal!", "a large bright t-shirt/top", "a medium grey ankle boot", "a purple bag", ""]
        )
    )

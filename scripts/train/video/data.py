"""Moving Fashion-MNIST: clips of one garment crossing a black frame in a stated direction.

Each clip is T = 8 frames of 1 x 32 x 32 in [-1, 1] (background exactly -1). The 28 x 28 garment is shrunk
to 16 x 16 (area average) so it can travel. Along the stated axis its top-left corner goes from `start` to
`start + d` (d uniform in [10, 16] px, start uniform in [0, 16 - d]) at a constant speed, rounded to whole
pixels per frame; across the axis it stays at one uniform position in [0, 16]. Directions: left (x falls),
right (x rises), up (row falls), down (row rises).

Prompt: "a {class} moving {direction}" (class names lower-case, as fashion-text spells them). Training drops
the class words or the direction words (each with probability 0.1) so partial prompts mean "any".

Tokenizer (src/models/text-encoder.ts implements the same rule): lower-case; split on whitespace; strip
characters other than [a-z/-]; drop empty words; word -> vocab id, unknown -> 1; pad 0; cut/pad to MAX_LEN.
"""
import os
import re
import sys
from typing import List, Tuple

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import fmnist  # noqa: E402

T, H, W, G = 8, 32, 32, 16
MAX_LEN = 8
PAD_ID, UNK_ID = 0, 1
DIRECTIONS = ["left", "right", "up", "down"]
CLASS_NAMES = [c.lower() for c in fmnist.CLASSES]
VOCAB: List[str] = ["<pad>", "<unk>", "a", "moving"] + DIRECTIONS
for _c in CLASS_NAMES:
    for _w in _c.split():
        if _w not in VOCAB:
            VOCAB.append(_w)
WORD_TO_ID = {w: i for i, w in enumerate(VOCAB)}
TOKENIZER_RULE = (
    "lowercase; split on whitespace; strip characters other than [a-z/-] from each word; "
    "drop empty words; word -> vocab id, unknown -> 1 (<unk>); pad id 0; truncate/right-pad to max_len"
)
_STRIP = re.compile(r"[^a-z/-]")


def tokenize(prompt: str) -> List[int]:
    words = [_STRIP.sub("", w) for w in prompt.lower().split()]
    ids = [WORD_TO_ID.get(w, UNK_ID) for w in words if w][:MAX_LEN]
    return ids + [PAD_ID] * (MAX_LEN - len(ids))


def prompt_of(cls: int, direction: int, drop_class: bool = False, drop_dir: bool = False) -> str:
    words = ["a"]
    if not drop_class:
        words.append(CLASS_NAMES[cls])
    if not drop_dir:
        words += ["moving", DIRECTIONS[direction]]
    return " ".join(words)


def word_maps() -> Tuple[torch.Tensor, torch.Tensor]:
    """[V, 10] and [V, 4] 0/1 matrices: which class / direction a vocabulary word names."""
    cm = torch.zeros(len(VOCAB), len(CLASS_NAMES))
    for c, name in enumerate(CLASS_NAMES):
        for w in name.split():
            cm[WORD_TO_ID[w], c] = 1.0
    dm = torch.zeros(len(VOCAB), len(DIRECTIONS))
    for d, w in enumerate(DIRECTIONS):
        dm[WORD_TO_ID[w], d] = 1.0
    return cm, dm


def garments(split: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """The split's garments shrunk to [N, G, G] in [-1, 1], and their labels."""
    x, y = fmnist.load(split)
    g = F.adaptive_avg_pool2d(x, G)[:, 0]
    return g.contiguous(), y


def positions(direction: torch.Tensor, gen: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners (row, col) per frame, [B, T] each, for the given directions [B]."""
    b = direction.shape[0]
    room = W - G
    d = torch.randint(10, room + 1, (b,), generator=gen).float()
    start = torch.floor(torch.rand(b, generator=gen) * (room - d + 1))
    across = torch.randint(0, room + 1, (b,), generator=gen).float()
    frac = torch.arange(T).float() / (T - 1)
    along = torch.round(start[:, None] + d[:, None] * frac[None, :])
    backwards = (direction == 0) | (direction == 2)  # left, up: the coordinate falls
    along = torch.where(backwards[:, None], room - along, along)
    across = across[:, None].expand(b, T)
    vertical = (direction >= 2)[:, None]
    row = torch.where(vertical, along, across).long()
    col = torch.where(vertical, across, along).long()
    return row, col


def render(g: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """Garments g [B, G, G] at the corners -> clips [B, T, 1, H, W]."""
    b = g.shape[0]
    out = torch.full((b, T, 1, H, W), -1.0)
    r, c = row.tolist(), col.tolist()
    for i in range(b):
        for t in range(T):
            out[i, t, 0, r[i][t] : r[i][t] + G, c[i][t] : c[i][t] + G] = g[i]
    return out


def sample_clips(gs: torch.Tensor, ys: torch.Tensor, n: int, gen: torch.Generator):
    """n random clips: (x [n, T, 1, H, W], class [n], direction [n])."""
    idx = torch.randint(0, gs.shape[0], (n,), generator=gen)
    direction = torch.randint(0, 4, (n,), generator=gen)
    row, col = positions(direction, gen)
    return render(gs[idx], row, col), ys[idx], direction


def tokens_for(cls: torch.Tensor, direction: torch.Tensor, gen: torch.Generator, p_drop: float = 0.0):
    """Token ids [n, MAX_LEN] of the clips' prompts, each word group dropped with probability p_drop."""
    drop = torch.rand(cls.shape[0], 2, generator=gen) < p_drop
    rows = [
        tokenize(prompt_of(int(c), int(d), bool(dc), bool(dd)))
        for c, d, (dc, dd) in zip(cls.tolist(), direction.tolist(), drop.tolist())
    ]
    return torch.tensor(rows, dtype=torch.long)


def one_hot_text(tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """What fashion-video-text returns: (one-hot words [n, L, V] with pad rows zero, mask [n, L])."""
    mask = tokens != PAD_ID
    return F.one_hot(tokens, len(VOCAB)).float() * mask[..., None].float(), mask


if __name__ == "__main__":
    gs, ys = garments("train")
    gen = torch.Generator().manual_seed(0)
    x, c, d = sample_clips(gs, ys, 4, gen)
    print(x.shape, c.tolist(), [DIRECTIONS[i] for i in d.tolist()], VOCAB, tokenize("a bag moving left"))

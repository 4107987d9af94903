"""Networks of the moving-Fashion-MNIST video stack: the flow denoiser, its one-hot text encoder,
the verifiers (class, motion, consistency) and the eval models (other architectures)."""
import importlib.util
import math
import os
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# The σ embedding and FiLM residual block are fashion-t2i's (scripts/train/t2i/nets.py); loaded by
# path because both files are named nets.py.
_spec = importlib.util.spec_from_file_location(
    "t2i_nets", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "t2i", "nets.py"))
_t2i = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_t2i)
SinusoidalEmb, ResBlock = _t2i.SinusoidalEmb, _t2i.ResBlock


# ---------------------------------------------------------------- text
class OneHotText(nn.Module):
    """fashion-video-text: tokens [N, L] -> (one-hot words [N, L, V] (zero at pads), mask [N, L])."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = tokens != 0
        t = tokens.clamp(0, self.vocab_size - 1)
        return F.one_hot(t, self.vocab_size).float() * mask.unsqueeze(-1).float(), mask


def prompt_dist(text: torch.Tensor, mask: torch.Tensor, word_map: torch.Tensor) -> torch.Tensor:
    """Which of K things (classes, directions) the prompt names, as a distribution [N, K];
    uniform where it names none."""
    counts = (text * mask.unsqueeze(-1).float()).sum(1) @ word_map
    k = word_map.shape[1]
    total = counts.sum(1, keepdim=True)
    uniform = torch.full_like(counts, 1.0 / k)
    return torch.where(total > 0, counts / total.clamp(min=1e-6), uniform)


# ---------------------------------------------------------------- denoiser
class TemporalConv(nn.Module):
    """Residual 1-D convolution over frames at every pixel: [N*T, C, h, w] -> same."""

    def __init__(self, c: int, frames: int):
        super().__init__()
        self.frames = frames
        self.norm = nn.GroupNorm(8, c)
        self.conv = nn.Conv1d(c, c, 3, padding=1)
        self.out = nn.Conv1d(c, c, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n = nt // self.frames
        y = F.silu(self.norm(x)).reshape(n, self.frames, c, h, w)
        y = y.permute(0, 3, 4, 2, 1).reshape(n * h * w, c, self.frames)
        y = self.out(F.silu(self.conv(y)))
        return x + y.reshape(n, h, w, c, self.frames).permute(0, 4, 3, 1, 2).reshape(nt, c, h, w)


class TemporalAttn(nn.Module):
    """Residual attention over frames at every pixel, with a learned frame-position embedding."""

    def __init__(self, c: int, frames: int, heads: int = 4):
        super().__init__()
        self.frames = frames
        self.heads = heads
        self.norm = nn.GroupNorm(8, c)
        self.pos = nn.Parameter(torch.zeros(frames, c))
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, c)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n = nt // self.frames
        y = self.norm(x).reshape(n, self.frames, c, h, w).permute(0, 3, 4, 1, 2).reshape(n * h * w, self.frames, c)
        y = y + self.pos
        q, k, v = self.qkv(y).reshape(n * h * w, self.frames, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)
        y = (a @ v).permute(0, 2, 1, 3).reshape(n * h * w, self.frames, c)
        y = self.out(y)
        return x + y.reshape(n, h, w, self.frames, c).permute(0, 3, 4, 1, 2).reshape(nt, c, h, w)


class Level(nn.Module):
    def __init__(self, c: int, edim: int, blocks: int, temporal: str, frames: int):
        super().__init__()
        self.res = nn.ModuleList([ResBlock(c, edim) for _ in range(blocks)])
        mix: List[nn.Module] = []
        for _ in range(blocks):
            if temporal == "conv":
                mix.append(TemporalConv(c, frames))
            elif temporal == "attn":
                mix.append(TemporalAttn(c, frames))
            else:
                mix.append(nn.Identity())
        self.mix = nn.ModuleList(mix)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        for r, m in zip(self.res, self.mix):
            h = m(r(h, e))
        return h


class VideoDenoiser(nn.Module):
    """forward(x [N,T,1,32,32], sigma [N], text [N,L,V], text_mask [N,L]) -> velocity [N,T,1,32,32].

    Every frame goes through one shared 2-D U-Net (2x2 pixel-unshuffle to 16x16, then 16/8/4); temporal
    mixing (1-D conv or attention over frames) follows the residual blocks of the levels in `temporal_levels`.
    Conditioning: FiLM from sigma and from the masked mean of learned word embeddings (a learned null
    embedding where the prompt is empty)."""

    def __init__(
        self,
        vocab_size: int,
        frames: int = 8,
        chs: Tuple[int, int, int] = (32, 64, 128),
        blocks: Tuple[int, int, int] = (1, 1, 2),
        temporal: str = "conv",
        temporal_levels: Tuple[int, int, int] = (0, 1, 1),
        edim: int = 128,
        frame_cond: bool = False,
        coord_cond: bool = False,
    ):
        super().__init__()
        self.frames = frames
        self.frame_cond = frame_cond
        self.coord_cond = coord_cond
        # Coordinate channels (row, column in [-1, 1]) added through a zero-initialised 1x1 conv: a convolutional
        # net hardly knows where it is, and where the object is at frame t depends on the direction word.
        ramp = torch.linspace(-1.0, 1.0, 16)
        grid = torch.stack([ramp.view(16, 1).expand(16, 16), ramp.view(1, 16).expand(16, 16)])
        self.register_buffer("coord_grid", grid.unsqueeze(0))
        self.coord_in = nn.Conv2d(2, chs[0], 1)
        nn.init.zeros_(self.coord_in.weight)
        nn.init.zeros_(self.coord_in.bias)
        # Per-frame conditioning: an MLP of (prompt embedding, frame position), so where the object is at
        # frame t can depend on the direction word directly. Zero-initialised output: adding it to a trained
        # model leaves its function unchanged.
        self.frame_pos = nn.Parameter(torch.randn(frames, 64) * 0.5)
        self.frame_mlp = nn.Sequential(nn.Linear(128, edim), nn.SiLU(), nn.Linear(edim, edim))
        nn.init.zeros_(self.frame_mlp[2].weight)
        nn.init.zeros_(self.frame_mlp[2].bias)
        self.vocab_size = vocab_size
        self.sig = SinusoidalEmb(64)
        self.sig_mlp = nn.Sequential(nn.Linear(64, edim), nn.SiLU(), nn.Linear(edim, edim))
        self.word = nn.Linear(vocab_size, 64, bias=False)
        self.null = nn.Parameter(torch.zeros(64))
        self.txt_mlp = nn.Sequential(nn.Linear(64, edim), nn.SiLU(), nn.Linear(edim, edim))
        self.inp = nn.Conv2d(4, chs[0], 3, padding=1)
        kinds = [temporal if on else "none" for on in temporal_levels]
        self.enc = nn.ModuleList([Level(chs[i], edim, blocks[i], kinds[i], frames) for i in range(3)])
        self.down = nn.ModuleList([nn.Conv2d(chs[i], chs[i + 1], 3, stride=2, padding=1) for i in range(2)])
        self.up = nn.ModuleList([nn.Conv2d(chs[i + 1], chs[i], 3, padding=1) for i in range(2)])
        self.dec = nn.ModuleList([Level(chs[i], edim, blocks[i], kinds[i], frames) for i in range(2)])
        self.out_norm = nn.GroupNorm(8, chs[0])
        self.out = nn.Conv2d(chs[0], 4, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def pooled_text(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        m = text_mask.float().unsqueeze(-1)
        words = self.word(text) * m
        count = m.sum(1)
        pooled = words.sum(1) / count.clamp(min=1.0)
        return torch.where(count > 0, pooled, self.null.unsqueeze(0).expand_as(pooled))

    def embed(self, sigma: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """[N*T, edim]: FiLM input of every frame."""
        n = sigma.shape[0]
        pooled = self.pooled_text(text, text_mask)
        e = F.silu(self.sig_mlp(self.sig(sigma * 1000.0)) + self.txt_mlp(pooled)).repeat_interleave(self.frames, 0)
        if self.frame_cond:
            pos = self.frame_pos.repeat(n, 1)
            e = e + self.frame_mlp(torch.cat([pooled.repeat_interleave(self.frames, 0), pos], dim=1))
        return e

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
    ) -> torch.Tensor:
        n = x.shape[0]
        e = self.embed(sigma, text, text_mask)
        h = self.inp(F.pixel_unshuffle(x.reshape(n * self.frames, 1, 32, 32), 2))
        if self.coord_cond:
            h = h + self.coord_in(self.coord_grid)
        h0 = self.enc[0](h, e)
        h1 = self.enc[1](self.down[0](h0), e)
        h2 = self.enc[2](self.down[1](h1), e)
        u1 = self.dec[1](h1 + self.up[1](F.interpolate(h2, scale_factor=2.0, mode="nearest")), e)
        u0 = self.dec[0](h0 + self.up[0](F.interpolate(u1, scale_factor=2.0, mode="nearest")), e)
        v = F.pixel_shuffle(self.out(F.silu(self.out_norm(u0))), 2)
        return v.reshape(n, self.frames, 1, 32, 32)

    @torch.jit.export
    def null_condition(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The unconditional row: no words (the learned null embedding)."""
        return torch.zeros(1, 8, self.vocab_size), torch.zeros(1, 8, dtype=torch.bool)


# ---------------------------------------------------------------- frame classifiers
def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class FrameNet(nn.Module):
    """Per-frame classifier over a 32x32 frame (verifier): 3 conv stages, global average pool."""

    def __init__(self, width: int = 32, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            _cbr(1, width), _cbr(width, width), nn.MaxPool2d(2),
            _cbr(width, 2 * width), nn.MaxPool2d(2),
            _cbr(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class EvalFrameNet(nn.Module):
    """Eval architecture (not a verifier): strided convs with dropout, max pool head."""

    def __init__(self, width: int = 24, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 3 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(3 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        )
        self.head = nn.Linear(4 * width, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class EvalDirectionNet(nn.Module):
    """Eval direction classifier: the T frames as input channels of a 2-D CNN -> 4 logits."""

    def __init__(self, frames: int = 8, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(frames, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * 16, 64), nn.ReLU(), nn.Linear(64, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x[:, :, 0])

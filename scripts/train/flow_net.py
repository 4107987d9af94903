"""Small class-conditional U-Net for rectified flow on 28x28 (TorchScript-scriptable).

Contract: forward(x[N,1,28,28], sigma[N], cond[N] int64) -> velocity v = eps - x0,
forward_features(x, sigma, cond) -> (velocity, pooled bottleneck features [N, D]).
Class index 10 is the null class (classifier-free guidance).
"""
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class SinusoidalEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a = t.float().unsqueeze(1) * self.freqs.unsqueeze(0)
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(8 if c % 8 == 0 else 1, c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, edim: int):
        super().__init__()
        self.n1 = _gn(cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(edim, 2 * cout)
        self.n2 = _gn(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        ss = self.emb(e).unsqueeze(-1).unsqueeze(-1)
        scale, shift = ss.chunk(2, dim=1)
        h = self.n2(h) * (1.0 + scale) + shift
        h = self.c2(F.silu(h))
        return self.skip(x) + h


class FlowUNet(nn.Module):
    def __init__(self, ch: Tuple[int, int, int] = (32, 64, 96), edim: int = 128, num_classes: int = 11):
        super().__init__()
        c1, c2, c3 = ch
        self.temb = SinusoidalEmb(64)
        self.tmlp = nn.Sequential(nn.Linear(64, edim), nn.SiLU(), nn.Linear(edim, edim))
        self.cemb = nn.Embedding(num_classes, edim)
        self.inp = nn.Conv2d(1, c1, 3, padding=1)
        self.d1 = ResBlock(c1, c1, edim)  # 28
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # 14
        self.d2 = ResBlock(c2, c2, edim)
        self.down2 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)  # 7
        self.m1 = ResBlock(c3, c3, edim)
        self.m2 = ResBlock(c3, c3, edim)
        self.up2 = nn.Conv2d(c3, c2, 3, padding=1)  # after 2x nearest upsample: 14
        self.u2 = ResBlock(2 * c2, c2, edim)
        self.up1 = nn.Conv2d(c2, c1, 3, padding=1)  # after 2x nearest upsample: 28
        self.u1 = ResBlock(2 * c1, c1, edim)
        self.outn = _gn(c1)
        self.out = nn.Conv2d(c1, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.feature_dim = c3

    def _run(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        e = self.tmlp(self.temb(sigma * 1000.0)) + self.cemb(cond)
        e = F.silu(e)
        h0 = self.d1(self.inp(x), e)
        h1 = self.d2(self.down1(h0), e)
        h = self.m1(self.down2(h1), e)
        h = self.m2(h, e)
        feats = h.mean(dim=(2, 3))
        h = self.u2(torch.cat([self.up2(F.interpolate(h, scale_factor=2.0, mode="nearest")), h1], dim=1), e)
        h = self.u1(torch.cat([self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest")), h0], dim=1), e)
        v = self.out(F.silu(self.outn(h)))
        return v, feats

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self._run(x, sigma, cond)[0]

    @torch.jit.export
    def forward_features(
        self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self._run(x, sigma, cond)

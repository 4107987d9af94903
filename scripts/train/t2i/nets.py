"""Networks of the small Fashion-MNIST text-to-image stack (all TorchScript-scriptable).

TextEncoder   tokens int64[N,L] -> (text float32[N,L,D], text_mask bool[N,L]); padded positions are zeroed.
ClipVerifier  (x0[N,1,28,28] in [-1,1], text[N,L,D], text_mask[N,L]) -> cosine [N]; features(x0) -> [N,E]
              (unit-norm image embeddings); text_features(text, text_mask) -> [N,E] (unit-norm).
AutoEncoder   encode(x[N,1,28,28]) -> z[N,4,7,7] (scaled: ~zero mean, unit variance per channel on the
              train split); decode(z) -> x[N,1,28,28] clamped to [-1,1]; forward = decode.
T2IDenoiser   forward(x[N,4,7,7], sigma[N], text[N,L,D], text_mask[N,L]) -> velocity eps - x0;
              null_condition() -> (text[1,L,D], text_mask[1,L]) for classifier-free guidance.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- attention helpers
class Attention(nn.Module):
    """Multi-head attention with a key mask (True = attend). Written out (no fused fast paths) so eager,
    scripted, training and eval give the same numbers. A row whose keys are all masked gets zeros."""

    def __init__(self, dq: int, dkv: int, heads: int, dim: int):
        super().__init__()
        self.heads = heads
        self.dh = dim // heads
        self.q = nn.Linear(dq, dim)
        self.k = nn.Linear(dkv, dim)
        self.v = nn.Linear(dkv, dim)
        self.o = nn.Linear(dim, dq)

    def forward(self, xq: torch.Tensor, xkv: torch.Tensor, kmask: torch.Tensor) -> torch.Tensor:
        n, lq, _ = xq.shape
        lk = xkv.shape[1]
        q = self.q(xq).view(n, lq, self.heads, self.dh).transpose(1, 2)
        k = self.k(xkv).view(n, lk, self.heads, self.dh).transpose(1, 2)
        v = self.v(xkv).view(n, lk, self.heads, self.dh).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh))
        m = kmask.view(n, 1, 1, lk)
        s = s.masked_fill(~m, -1e9)
        a = torch.softmax(s, dim=-1) * m.to(s.dtype)
        h = torch.matmul(a, v).transpose(1, 2).reshape(n, lq, self.heads * self.dh)
        return self.o(h)


def masked_mean(text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(text.dtype).unsqueeze(-1)
    return (text * m).sum(1) / m.sum(1).clamp_min(1.0)


# ---------------------------------------------------------------- text encoder
class TextBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.n1 = nn.LayerNorm(d)
        self.att = Attention(d, d, heads, d)
        self.n2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.att(h, h, mask)
        return x + self.mlp(self.n2(x))


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, max_len: int = 8, dim: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.max_len = max_len
        self.dim = dim
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList([TextBlock(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.vocab_size = vocab_size

    def forward(self, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        tokens = tokens.long()
        lt = tokens.shape[1]
        tokens = tokens.clamp(0, self.vocab_size - 1)
        mask = tokens != 0
        x = self.tok(tokens) + self.pos[:lt].unsqueeze(0)
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.norm(x) * mask.unsqueeze(-1).to(x.dtype)
        return x, mask


# ---------------------------------------------------------------- CLIP-like verifier
def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ClipVerifier(nn.Module):
    def __init__(self, text_dim: int = 64, embed_dim: int = 64):
        super().__init__()
        self.image = nn.Sequential(
            _cbr(1, 32),
            _cbr(32, 32),
            nn.MaxPool2d(2),  # 14
            _cbr(32, 64),
            _cbr(64, 64),
            nn.MaxPool2d(2),  # 7
            _cbr(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, embed_dim),
        )
        self.text_proj = nn.Sequential(nn.Linear(text_dim, 128), nn.GELU(), nn.Linear(128, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.embed_dim = embed_dim

    @torch.jit.export
    def features(self, x0: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(x0), dim=-1)

    @torch.jit.export
    def text_features(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(masked_mean(text, text_mask)), dim=-1)

    def forward(self, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        return (self.features(x0) * self.text_features(text, text_mask)).sum(-1)


# ---------------------------------------------------------------- autoencoder
class AutoEncoder(nn.Module):
    def __init__(self, latent_ch: int = 4, ch: int = 64):
        super().__init__()
        c = ch
        self.enc = nn.Sequential(
            nn.Conv2d(1, c // 2, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1),
            nn.SiLU(),  # 14
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1),
            nn.SiLU(),  # 7
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, latent_ch, 1),
        )
        self.dec = nn.Sequential(
            nn.Conv2d(latent_ch, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Upsample(scale_factor=2.0, mode="nearest"),  # 14
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c // 2, 3, padding=1),
            nn.SiLU(),
            nn.Upsample(scale_factor=2.0, mode="nearest"),  # 28
            nn.Conv2d(c // 2, c // 2, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c // 2, 1, 3, padding=1),
        )
        self.register_buffer("shift", torch.zeros(latent_ch))
        self.register_buffer("scale", torch.ones(latent_ch))

    @torch.jit.export
    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    @torch.jit.export
    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (self.enc(x) - self.shift.view(1, -1, 1, 1)) * self.scale.view(1, -1, 1, 1)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z / self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)).clamp(-1.0, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)


# ---------------------------------------------------------------- latent denoiser
class SinusoidalEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a = t.float().unsqueeze(1) * self.freqs.unsqueeze(0)
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c: int, edim: int):
        super().__init__()
        self.n1 = nn.GroupNorm(8, c)
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.emb = nn.Linear(edim, 2 * c)
        self.n2 = nn.GroupNorm(8, c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.emb(e).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        h = self.n2(h) * (1.0 + scale) + shift
        return x + self.c2(F.silu(h))


class CrossAttnBlock(nn.Module):
    """Image tokens attend to the text tokens plus one learned always-present key ("nothing")."""

    def __init__(self, c: int, text_dim: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, c)
        self.att = Attention(c, text_dim, heads, c)
        self.sink = nn.Parameter(torch.randn(1, 1, text_dim) * 0.02)
        nn.init.zeros_(self.att.o.weight)
        nn.init.zeros_(self.att.o.bias)

    def forward(self, x: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        kv = torch.cat([self.sink.expand(n, 1, self.sink.shape[2]), text], dim=1)
        km = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        h = self.att(q, kv, km)
        return x + h.transpose(1, 2).reshape(n, c, hh, ww)


class SelfAttnBlock(nn.Module):
    def __init__(self, c: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, c)
        self.att = Attention(c, c, heads, c)
        nn.init.zeros_(self.att.o.weight)
        nn.init.zeros_(self.att.o.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        m = torch.ones(n, hh * ww, dtype=torch.bool, device=x.device)
        return x + self.att(q, q, m).transpose(1, 2).reshape(n, c, hh, ww)


class NoCross(nn.Module):
    def forward(self, x: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x


class Stage(nn.Module):
    def __init__(self, c: int, edim: int, text_dim: int, self_attn: bool, cross_attn: bool, heads: int):
        super().__init__()
        self.res = ResBlock(c, edim)
        self.cross = CrossAttnBlock(c, text_dim, heads) if cross_attn else NoCross()
        self.sa = SelfAttnBlock(c, heads) if self_attn else nn.Identity()

    def forward(self, h: torch.Tensor, e: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.sa(self.cross(self.res(h, e), text, mask))


class T2IDenoiser(nn.Module):
    def __init__(
        self,
        latent_ch: int = 4,
        ch: int = 128,
        edim: int = 256,
        text_dim: int = 64,
        max_len: int = 8,
        depth: int = 4,
        self_attn: bool = True,
        cross_stages: Tuple[int, ...] = (0, 1, 2, 3),
        heads: int = 4,
    ):
        super().__init__()
        self.temb = SinusoidalEmb(64)
        self.tmlp = nn.Sequential(nn.Linear(64, edim), nn.SiLU(), nn.Linear(edim, edim))
        self.pool_mlp = nn.Sequential(nn.Linear(text_dim, edim), nn.SiLU(), nn.Linear(edim, edim))
        self.inp = nn.Conv2d(latent_ch, ch, 3, padding=1)
        self.stages = nn.ModuleList(
            [Stage(ch, edim, text_dim, self_attn and i % 2 == 1, i in cross_stages, heads) for i in range(depth)]
        )
        self.outn = nn.GroupNorm(8, ch)
        self.out = nn.Conv2d(ch, latent_ch, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.null_text = nn.Parameter(torch.randn(1, max_len, text_dim) * 0.5)
        self.register_buffer("null_mask", torch.ones(1, max_len, dtype=torch.bool))

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
    ) -> torch.Tensor:
        text_mask = text_mask.to(torch.bool)
        e = F.silu(self.tmlp(self.temb(sigma * 1000.0)) + self.pool_mlp(masked_mean(text, text_mask)))
        h = self.inp(x)
        for st in self.stages:
            h = st(h, e, text, text_mask)
        return self.out(F.silu(self.outn(h)))

    @torch.jit.export
    def null_condition(self) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.null_text, self.null_mask

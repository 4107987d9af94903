"""TorchScript wrappers of the video verifiers and eval models (inputs [N, T, 1, 32, 32] in [-1, 1]).

Verifiers read the prompt as the one-hot words fashion-video-text returns (text [N, L, V], text_mask [N, L]):
  VideoClassVerifier        mean over frames of log p(prompt class | frame)   (frame classifier, train split)
  VideoMotionVerifier       the clip's mean centroid velocity along the prompt's direction (capped at the data's
                            top speed) minus its speed across it, in px/frame; no weights
  VideoConsistencyVerifier  mean cosine of consecutive frames' classifier features minus the mean relative change
                            of the object's mass (the object stays one object)
A prompt that names no class (no direction) is scored against the uniform mix of all of them.
Eval models (never verifiers): ClipClassEval (clip logits = mean frame log-probs; frame_logits) and
DirectionEval (log-probs of left/right/up/down), both trained on test-split clips; forward(x, cond) -> [N] is the
log-prob of class / direction cond, as for every shipped eval model.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from nets import prompt_dist

TOP_SPEED = 16.0 / 7.0  # the data's fastest travel, px per frame


def frames_of(x0: torch.Tensor) -> torch.Tensor:
    n, t = x0.shape[0], x0.shape[1]
    return x0.reshape(n * t, 1, x0.shape[3], x0.shape[4])


class VideoClassVerifier(nn.Module):
    def __init__(self, net: nn.Module, class_map: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("class_map", class_map)

    @torch.jit.export
    def logits(self, x0: torch.Tensor) -> torch.Tensor:
        """Clip class log-probabilities [N, 10]: the mean over frames."""
        n, t = x0.shape[0], x0.shape[1]
        return F.log_softmax(self.net(frames_of(x0)), dim=1).reshape(n, t, -1).mean(1)

    @torch.jit.export
    def features(self, x0: torch.Tensor) -> torch.Tensor:
        n, t = x0.shape[0], x0.shape[1]
        return self.net.features(frames_of(x0)).reshape(n, t, -1).mean(1)

    def forward(self, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        return (self.logits(x0) * prompt_dist(text, text_mask, self.class_map)).sum(1)


def centroids(x0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per frame: row and column of the centre of mass of (p - 0.1)+ with p = (x + 1) / 2, and the mass."""
    p = F.relu((x0[:, :, 0].clamp(-1.0, 1.0) + 1.0) * 0.5 - 0.1)
    h, w = p.shape[2], p.shape[3]
    mass = p.sum((2, 3))
    m = mass.clamp(min=1e-3)
    rows = torch.arange(h, dtype=p.dtype).view(1, 1, h, 1)
    cols = torch.arange(w, dtype=p.dtype).view(1, 1, 1, w)
    return (p * rows).sum((2, 3)) / m, (p * cols).sum((2, 3)) / m, mass


class VideoMotionVerifier(nn.Module):
    def __init__(self, dir_map: torch.Tensor):
        super().__init__()
        self.register_buffer("dir_map", dir_map)
        self.top_speed = TOP_SPEED
        # unit vectors (d_row, d_col) of left, right, up, down
        self.register_buffer("units", torch.tensor([[0.0, -1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]]))

    @torch.jit.export
    def velocity(self, x0: torch.Tensor) -> torch.Tensor:
        """Mean centroid velocity [N, 2] (rows, cols) in px per frame."""
        r, c, _ = centroids(x0)
        t = x0.shape[1]
        return torch.stack([(r[:, -1] - r[:, 0]) / (t - 1), (c[:, -1] - c[:, 0]) / (t - 1)], dim=1)

    @torch.jit.export
    def direction_scores(self, x0: torch.Tensor) -> torch.Tensor:
        """[N, 4]: the score of each direction (left, right, up, down)."""
        v = self.velocity(x0)
        along = v @ self.units.t()
        across = (v @ self.units.flip(1).t()).abs()
        return along.clamp(max=self.top_speed) - across

    def forward(self, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        return (self.direction_scores(x0) * prompt_dist(text, text_mask, self.dir_map)).sum(1)


class VideoConsistencyVerifier(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @torch.jit.export
    def parts(self, x0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mean cosine of consecutive frame features [N], mean relative mass change [N])."""
        n, t = x0.shape[0], x0.shape[1]
        f = F.normalize(self.net.features(frames_of(x0)).reshape(n, t, -1), dim=2)
        cos = (f[:, 1:] * f[:, :-1]).sum(2).mean(1)
        _, _, mass = centroids(x0)
        change = (mass[:, 1:] - mass[:, :-1]).abs().mean(1) / (mass.mean(1) + 1.0)
        return cos, change

    def forward(self, x0: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        cos, change = self.parts(x0)
        return cos - change


class ClipClassEval(nn.Module):
    """Eval: logits(x [N,T,1,32,32]) -> clip class log-probs [N,10] (mean over frames); forward(x, cond) -> [N]
    the log-prob of class cond (the verifier contract, so tools that take any shipped eval model can call it)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @torch.jit.export
    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[0], x.shape[1]
        return self.net(frames_of(x)).reshape(n, t, -1)

    @torch.jit.export
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.frame_logits(x), dim=2).mean(1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.logits(x).gather(1, cond.long().view(-1, 1)).squeeze(1)


class DirectionEval(nn.Module):
    """Eval: logits(x [N,T,1,32,32]) -> [N,4] log-probs of left, right, up, down; forward(x, cond) -> [N] the
    log-prob of direction cond."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @torch.jit.export
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.net(x), dim=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.logits(x).gather(1, cond.long().view(-1, 1)).squeeze(1)

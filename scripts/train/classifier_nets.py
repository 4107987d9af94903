"""Classifier architectures (TorchScript-scriptable).

VerifierNet  — the search verifier (models/fashion-classifier.pt): all-conv VGG-style net with
               BatchNorm and global average pooling, 128-D features.
EvalNet      — the independent evaluation classifier (eval/fashion-eval.pt): LeNet-style 5x5
               convolutions without BatchNorm, a fully connected 128-D feature layer. Different
               architecture and seed from the verifier; never used as a search verifier.
Both: forward(x0[N,1,28,28], cond[N] int64) -> log p(cond | x0) [N]; logits(x) -> [N,10];
features(x) -> [N,128].
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def _cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VerifierNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            _cbr(1, 32),
            _cbr(32, 32),
            nn.MaxPool2d(2),  # 14
            _cbr(32, 64),
            _cbr(64, 64),
            nn.MaxPool2d(2),  # 7
            _cbr(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(128, 10)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    @torch.jit.export
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x)))

    def forward(self, x0: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(self.logits(x0), dim=1)
        c = cond.long().clamp(0, 9)
        return lp.gather(1, c.unsqueeze(1)).squeeze(1)


class EvalNet(nn.Module):
    def __init__(self, feat_dim: int = 128):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 5, padding=2)
        self.c2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, feat_dim)
        self.drop = nn.Dropout(0.4)
        self.fc2 = nn.Linear(feat_dim, 10)
        self.register_buffer("mu_all", torch.zeros(feat_dim))
        self.register_buffer("cov_all", torch.zeros(feat_dim, feat_dim))
        self.register_buffer("mu_class", torch.zeros(10, feat_dim))
        self.register_buffer("cov_class", torch.zeros(10, feat_dim, feat_dim))

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    @torch.jit.export
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.features(x)))

    def forward(self, x0: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(self.logits(x0), dim=1)
        c = cond.long().clamp(0, 9)
        return lp.gather(1, c.unsqueeze(1)).squeeze(1)

    @torch.jit.export
    def fid_stats(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.mu_all, self.cov_all, self.mu_class, self.cov_class

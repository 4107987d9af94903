"""Time Prediction Module (TPDM, arXiv 2412.01243) for the fashion-flow denoiser, and the
adaptive sampler in PyTorch (the reference the TypeScript sampler src/samplers/adaptive.ts follows).

TorchScript contract of models/fashion-tpm.pt:
  forward(features[N,D] float32, sigma[N] float32) -> Tensor[N,2] = (alpha, beta), both > 1:
      the Beta(alpha, beta) distribution of r = sigma_next / sigma.
  mode(features, sigma) -> r[N]: (alpha-1)/(alpha+beta-2), clamped to [r_min, r_max].
features are the denoiser's forward_features(x, sigma, cond)[1] at the current state.

Adaptive sampling (one denoiser evaluation = one step = one NFE per sample):
  sigma = 1
  for step = 1..max_steps:
      v, h = flow.forward_features(x, sigma, cond)
      r = mode(h, sigma)               (training: r ~ Beta(alpha, beta), then clamped)
      sigma_next = r * sigma
      if sigma_next < sigma_min or step == max_steps: sigma_next = 0   (the final step, to 0)
      x = x + (sigma_next - sigma) * u  (solver "euler": u = v; "ab2": below)
      if sigma_next == 0: done (this sample took `step` steps)
Samples finish independently; a batch keeps only its unfinished rows.

Solvers (the card's sampler.solver; both cost one evaluation per step):
  euler  u = v.
  ab2    the variable-step second-order Adams–Bashforth update, which reuses the sample's velocity
         from its previous step: with h = sigma_next - sigma and h' the previous step,
         u = (1 + c) v - c v_prev, c = min(h / (2 h'), C_MAX); a sample's first step is Euler.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

R_MIN = 1e-3
R_MAX = 1.0 - 1e-3
LOGIT_MIN = -10.0
LOGIT_MAX = 12.0
# AB2 extrapolates with weight c = h / (2 h'); a step much longer than the one before would
# amplify the velocity difference, so c is capped (c = 1: a step twice the previous one).
AB2_C_MAX = 1.0
SOLVERS = ("euler", "ab2")


def ab2_coefficient(h: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
    """c per sample (float64 maths, like the TypeScript sampler): 0 where there is no previous step."""
    h, h_prev = h.double(), h_prev.double()
    c = torch.where(
        h_prev != 0, h / (2.0 * torch.where(h_prev != 0, h_prev, torch.ones_like(h_prev))), torch.zeros_like(h)
    )
    return c.clamp(0.0, AB2_C_MAX).float()


def solver_velocity(solver: str, v: torch.Tensor, v_prev: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    if solver == "euler":
        return v
    cc = c.view(-1, *([1] * (v.dim() - 1)))
    return (1.0 + cc) * v - cc * v_prev


class TimePredictionModule(nn.Module):
    def __init__(self, feature_dim: int = 128, hidden: int = 128, n_freq: int = 8):
        super().__init__()
        self.feature_dim = feature_dim
        self.register_buffer("feat_mean", torch.zeros(feature_dim))
        self.register_buffer("feat_std", torch.ones(feature_dim))
        self.register_buffer("freqs", torch.pi * 2.0 ** torch.arange(n_freq, dtype=torch.float32) / 2.0)
        sig_dim = 2 + 2 * n_freq
        self.net = nn.Sequential(
            nn.Linear(feature_dim + sig_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )
        self.r_min = R_MIN
        self.r_max = R_MAX
        self.logit_min = LOGIT_MIN
        self.logit_max = LOGIT_MAX

    def sigma_embedding(self, sigma: torch.Tensor) -> torch.Tensor:
        s = torch.nan_to_num(sigma.float(), 1.0, 1.0, 0.0).clamp(1e-6, 1.0).unsqueeze(1)
        a = s * self.freqs.unsqueeze(0)
        return torch.cat([s, torch.log(s) / 7.0, torch.sin(a), torch.cos(a)], dim=1)

    @torch.jit.export
    def logits(self, features: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Pre-activations (a, b) with alpha = exp(a) + 1, beta = exp(b) + 1, bounded for stability."""
        h = (features.float() - self.feat_mean) / self.feat_std
        h = torch.nan_to_num(h, 0.0, 0.0, 0.0).clamp(-20.0, 20.0)
        out = self.net(torch.cat([h, self.sigma_embedding(sigma)], dim=1))
        return out.clamp(self.logit_min, self.logit_max)

    def forward(self, features: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.logits(features, sigma)) + 1.0

    @torch.jit.export
    def mode(self, features: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # (alpha-1)/(alpha+beta-2) = e^a / (e^a + e^b) = sigmoid(a - b): exact and never 0/0.
        ab = self.logits(features, sigma)
        r = torch.sigmoid(ab[:, 0] - ab[:, 1])
        return r.clamp(self.r_min, self.r_max)


def beta_dist(ab_logits: torch.Tensor) -> torch.distributions.Beta:
    ab = torch.exp(ab_logits) + 1.0
    return torch.distributions.Beta(ab[:, 0], ab[:, 1])


def mode_from_logits(ab_logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(ab_logits[:, 0] - ab_logits[:, 1]).clamp(R_MIN, R_MAX)


@torch.no_grad()
def adaptive_rollout(
    flow,
    tpm,
    x: torch.Tensor,
    cond: torch.Tensor,
    sigma_min: float,
    max_steps: int,
    stochastic: bool = False,
    record: bool = False,
    solver: str = "euler",
):
    """Adaptive sampling of a batch (see the module docstring).

    Returns (x0 [N,...], steps [N] int64, and when record=True a list per step of
    (row indices, features, sigma, r used) for the policy update). tpm is the Python module or
    the TorchScript one (needs .logits when stochastic/record, .mode otherwise).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    n = x.shape[0]
    x = x.clone()
    sigma = torch.ones(n)
    steps = torch.zeros(n, dtype=torch.long)
    v_prev = torch.zeros_like(x)
    h_prev = torch.zeros(n)
    active = torch.arange(n)
    trace: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for step in range(1, max_steps + 1):
        if active.numel() == 0:
            break
        xa, sa, ca = x[active], sigma[active], cond[active]
        v, h = flow.forward_features(xa, sa, ca)
        if stochastic:
            lg = tpm.logits(h, sa)
            r = beta_dist(lg).sample().clamp(R_MIN, R_MAX)  # seeded through torch.manual_seed
        else:
            r = tpm.mode(h, sa)
        nxt = r * sa
        final = (nxt < sigma_min) | (step == max_steps)
        nxt = torch.where(final, torch.zeros_like(nxt), nxt)
        dt = nxt - sa
        u = solver_velocity(solver, v, v_prev[active], ab2_coefficient(dt, h_prev[active]))
        x[active] = xa + dt.view(-1, 1, 1, 1) * u
        if solver != "euler":
            v_prev[active] = v
            h_prev[active] = dt
        sigma[active] = nxt
        steps[active] = step
        if record:
            trace.append((active.clone(), h.clone(), sa.clone(), r.clone()))
        active = active[~final]
    return x, steps, trace


@torch.no_grad()
def fixed_rollout(
    flow, x: torch.Tensor, cond: torch.Tensor, steps: int, shift: float = 1.0, solver: str = "euler"
) -> torch.Tensor:
    """The fixed (shifted) uniform schedule of `steps` steps, sigma 1 -> 0, with either solver."""
    sig = shifted_schedule(steps, shift)
    n = x.shape[0]
    v_prev = torch.zeros_like(x)
    h_prev = torch.zeros(n)
    for k in range(steps):
        v = flow(x, torch.full((n,), sig[k]), cond)
        dt = torch.full((n,), sig[k + 1] - sig[k])
        x = x + (sig[k + 1] - sig[k]) * solver_velocity(solver, v, v_prev, ab2_coefficient(dt, h_prev))
        v_prev, h_prev = v, dt
    return x


def discount(n: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1/(n+1)) * sum_{i=0..n} gamma^(n-i) = (1 - gamma^(n+1)) / ((n+1)(1-gamma))."""
    n = n.double()
    if gamma >= 1.0:
        return torch.ones_like(n).float()
    return ((1.0 - gamma ** (n + 1.0)) / ((n + 1.0) * (1.0 - gamma))).float()


def shift_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    """The SD3 time shift of a uniform level u in [0,1]: s*u / (1 + (s-1)*u) (s = 1: uniform)."""
    return shift * u / (1.0 + (shift - 1.0) * u)


def unshift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    return sigma / (shift - (shift - 1.0) * sigma)


def shifted_schedule(n_steps: int, shift: float = 1.0) -> List[float]:
    return shift_sigma(torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64), shift).tolist()


def schedule_target_r(sigma: torch.Tensor, n_steps: int, shift: float = 1.0) -> torch.Tensor:
    """r that reproduces the shifted n-step schedule: sigma -> shift(unshift(sigma) - 1/n), 0 at the end."""
    u = unshift_sigma(sigma.double(), shift)
    nxt = shift_sigma((u - 1.0 / n_steps).clamp_min(0.0), shift)
    return (nxt / sigma.double().clamp_min(1e-6)).clamp(R_MIN, R_MAX).float()

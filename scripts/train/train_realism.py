"""Train the class-agnostic realism verifier (models/fashion-realism.pt): a discriminator of
real Fashion-MNIST train images against the flow model's few-step samples (Euler with 1-4
steps, random classes, guidance 1.0: blurry / unfinished images). Output = logit (higher =
more real). It plays the role of an aesthetic scorer that can disagree with the classifier.

  /usr/bin/python3 scripts/train/train_realism.py --flow models/fashion-flow.pt --seed 3

With --fakes and --name it trains other discriminators of the same kind, e.g. the detail verifier
(models/fashion-detail.pt: real images vs the flow's 5-20-step Euler and 4-12-step AB2 samples,
which look finished but lack fine detail; the reward of the adaptive-schedule training):

  /usr/bin/python3 scripts/train/train_realism.py --flow models/fashion-flow.pt --seed 5 --name fashion-detail \
      --fakes euler5,euler8,euler12,euler16,euler20,ab2-4,ab2-6,ab2-8,ab2-12 --out models/fashion-detail.pt

Reports, on held-out data: accuracy on real TEST images vs fresh few-step fakes, and the mean
score of real test images, of 50-step flow samples and of 1/2/4-step samples.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from evaluate_flow import sample  # noqa: E402
from tpm_net import fixed_rollout  # noqa: E402


class RealismNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.GroupNorm(8, 64),
            nn.LeakyReLU(0.2),  # 14
            nn.Conv2d(64, 128, 4, stride=2, padding=1),
            nn.GroupNorm(8, 128),
            nn.LeakyReLU(0.2),  # 7
            nn.Conv2d(128, 128, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(128, 1)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x0: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x0)).squeeze(1)


def parse_fakes(spec):
    """'euler4,ab2-8' -> [('euler', 4), ('ab2', 8)]: the samplers whose outputs are the fakes."""
    out = []
    for t in [t for t in spec.split(",") if t]:
        solver, n = t.split("-", 1) if "-" in t else (t.rstrip("0123456789"), t[len(t.rstrip("0123456789")) :])
        if solver not in ("euler", "ab2") or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--fakes: '{t}' is not eulerN or ab2-N")
        out.append((solver, int(n)))
    return out


@torch.no_grad()
def fakes(flow, n, seed, kinds=(("euler", 1), ("euler", 2), ("euler", 3), ("euler", 4))):
    g = torch.Generator().manual_seed(seed)
    out = []
    per = n // len(kinds)
    for i, (solver, st) in enumerate(kinds):
        y = torch.randint(0, 10, (per,), generator=g)
        if solver == "euler":
            out.append(sample(flow, y, st, 1.0, seed * 100 + i).clamp(-1, 1))
        else:
            gi = torch.Generator().manual_seed(seed * 100 + i)
            x = torch.randn(per, 1, 28, 28, generator=gi)
            out.append(
                torch.cat(
                    [fixed_rollout(flow, x[j : j + 500], y[j : j + 500], st, 1.0, solver) for j in range(0, per, 500)]
                ).clamp(-1, 1)
            )
    return torch.cat(out)


@torch.no_grad()
def score(m, x):
    m.eval()
    return torch.cat(
        [m(x[i : i + 500], torch.zeros(min(500, x.shape[0] - i), dtype=torch.long)) for i in range(0, x.shape[0], 500)]
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flow", default="models/fashion-flow.pt")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--n-fake", type=int, default=16000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="models/fashion-realism.pt")
    ap.add_argument("--name", default="fashion-realism", help="the card's name")
    ap.add_argument(
        "--fakes",
        default="euler1,euler2,euler3,euler4",
        help="the samplers that make the fakes: eulerN (uniform Euler, N steps) or ab2-N (uniform AB2)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = "/usr/bin/python3 " + " ".join(sys.argv)
    extra = {"model.json": ""}
    flow = torch.jit.load(args.flow, _extra_files=extra)
    flow.eval()
    fcard = json.loads(extra["model.json"])
    t0 = time.time()
    kinds = parse_fakes(args.fakes)
    fake_desc = ", ".join(f"{'Euler' if k == 'euler' else 'AB2'} {n}" for k, n in kinds)
    xf = fakes(flow, args.n_fake, args.seed, kinds)
    print(f"generated {xf.shape[0]} fakes in {time.time()-t0:.0f}s", flush=True)
    xr, _ = fmnist.load("train")
    g = torch.Generator().manual_seed(args.seed)
    xr = xr[torch.randperm(60000, generator=g)[: xf.shape[0]]]
    x = torch.cat([xr, xf])
    t = torch.cat([torch.ones(xr.shape[0]), torch.zeros(xf.shape[0])])
    m = RealismNet()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-4)
    bs = 128
    steps = args.epochs * (x.shape[0] // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)
    curve = []
    for ep in range(args.epochs):
        m.train()
        p = torch.randperm(x.shape[0], generator=g)
        tot = 0.0
        for k in range(x.shape[0] // bs):
            idx = p[k * bs : (k + 1) * bs]
            xb = x[idx]
            flip = torch.rand(xb.shape[0], generator=g) < 0.5  # flips: realism should not depend on orientation
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            loss = F.binary_cross_entropy_with_logits(m(xb, torch.zeros(bs, dtype=torch.long)), t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss)
        curve.append({"epoch": ep + 1, "train_loss": round(tot / (x.shape[0] // bs), 4)})
        print(f"epoch {ep+1} loss {tot/(x.shape[0]//bs):.4f} {time.time()-t0:.0f}s", flush=True)
    train_time = time.time() - t0
    # held-out evaluation: real TEST split vs fresh fakes (different seed)
    xte, yte = fmnist.load("test")
    xf2 = fakes(flow, 2000, args.seed + 1000, kinds)
    s_real = score(m, xte)
    s_fake = score(m, xf2)
    acc = float(((s_real > 0).float().sum() + (s_fake <= 0).float().sum()) / (s_real.numel() + s_fake.numel()))
    lab = torch.arange(10).repeat_interleave(10)
    by_steps = {}
    for st in sorted({1, 2, 4, 50} | {n for k, n in kinds if k == "euler"}):
        by_steps[f"euler{st}"] = round(float(score(m, sample(flow, lab, st, 1.0, 777).clamp(-1, 1)).mean()), 3)
    for st in sorted({n for k, n in kinds if k == "ab2"} | ({20, 30} if any(k == "ab2" for k, _ in kinds) else set())):
        x_ab2 = fixed_rollout(
            flow,
            torch.randn(lab.shape[0], 1, 28, 28, generator=torch.Generator().manual_seed(777)),
            lab,
            st,
            1.0,
            "ab2",
        )
        by_steps[f"ab2-{st}"] = round(float(score(m, x_ab2.clamp(-1, 1)).mean()), 3)
    metrics = {
        "heldout_accuracy_real_test_vs_fresh_fakes": round(acc, 4),
        "mean_logit_real_test": round(float(s_real.mean()), 3),
        "mean_logit_fresh_fakes": round(float(s_fake.mean()), 3),
        "mean_logit_flow_samples_by_sampler_100_samples": by_steps,
    }
    print(json.dumps(metrics, indent=1))
    card = fmnist.base_card(args.name, "verifier")
    for k in ("prediction", "path"):
        card[k] = None
    card["input"] = "x0 [N,1,28,28] float32 in [-1,1] (clean samples); cond is ignored"
    card["description"] = (
        "Class-agnostic realism verifier (aesthetic-scorer stand-in): a discriminator of real "
        f"Fashion-MNIST train images vs the fashion-flow model's samples ({fake_desc} steps, uniform). "
        "forward(x0, cond) -> logit [N] (higher = more real, cond ignored); features(x0) -> [N,128]."
    )
    card["methods"] = {"forward": "forward(x0, cond) -> realism logit [N]", "features": "features(x0) -> [N,128]"}
    card["feature_dim"] = 128
    card["metrics"] = metrics
    card["provenance"] = {
        "training_data": f"{xr.shape[0]} Fashion-MNIST train images (real) vs {xf.shape[0]} samples of the flow "
        f"model {args.flow} ({fake_desc} steps, random classes, guidance 1.0), horizontal flips",
        "flow_model_used": {
            "file": args.flow,
            "training_steps": fcard.get("provenance", {}).get("training_steps"),
            "training_time_minutes": fcard.get("provenance", {}).get("training_time_minutes"),
        },
        "command": command,
        "seed": args.seed,
        "param_count": fmnist.count_params(m),
        "training_time_minutes": round(train_time / 60, 1),
        "epochs": args.epochs,
        "curve": curve,
        "optimizer": "AdamW one-cycle max lr 1e-3, batch 128, BCE with logits",
        "hardware": "CPU",
        **fmnist.torch_info(),
    }
    torch.jit.save(torch.jit.script(m), args.out, _extra_files={"model.json": json.dumps(card, indent=1)})
    print(f"saved {args.out} params {card['provenance']['param_count']} time {train_time/60:.1f} min")


if __name__ == "__main__":
    main()

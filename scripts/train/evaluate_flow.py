"""Evaluate the flow model with the independent eval classifier and write the metrics into its card.

  /usr/bin/python3 scripts/train/evaluate_flow.py --model models/fashion-flow.pt --per-class 100

Samples --per-class images for each of the 10 classes with Euler (--steps 50, uniform sigma grid
1 -> 0), classifier-free guidance --guidance 1.0 (w=1 is the plain conditional velocity), seeded
noise. Measures with eval/fashion-eval.pt: class accuracy (per class and overall), Frechet
distance on eval features against the real TEST split statistics stored in the eval module
(per class and overall), and the Inception-style score. For scale it also reports the same
metrics for the same number of REAL train images (the small-sample floor of the FD estimate).
Re-saves the model archive with card["metrics"] updated (unless --no-write).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402


def frechet(mu1, c1, mu2, c2):
    mu1, c1, mu2, c2 = (t.double() for t in (mu1, c1, mu2, c2))
    e, U = torch.linalg.eigh(c1)
    s1 = (U * e.clamp_min(0).sqrt()) @ U.T
    m = s1 @ c2 @ s1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(c1) + torch.trace(c2) - 2 * tr_sqrt)


def mean_cov(f):
    f = f.double()
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / (f.shape[0] - 1)


@torch.no_grad()
def sample(flow, labels, steps, guidance, seed, bs=500):
    gen = torch.Generator().manual_seed(seed)
    out = []
    sig = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(0, labels.shape[0], bs):
        y = labels[i : i + bs]
        n = y.shape[0]
        x = torch.randn(n, 1, 28, 28, generator=gen)
        for k in range(steps):
            s = torch.full((n,), float(sig[k]))
            if guidance == 1.0:
                v = flow(x, s, y)
            else:
                vv = flow(torch.cat([x, x]), torch.cat([s, s]), torch.cat([y, torch.full_like(y, fmnist.NULL_CLASS)]))
                v = vv[n:] + guidance * (vv[:n] - vv[n:])
            x = x + (float(sig[k + 1]) - float(sig[k])) * v
        out.append(x)
    return torch.cat(out)


@torch.no_grad()
def measure(ev, x, y):
    logits = torch.cat([ev.logits(x[i : i + 500]) for i in range(0, x.shape[0], 500)])
    feats = torch.cat([ev.features(x[i : i + 500]) for i in range(0, x.shape[0], 500)])
    mu_all, cov_all, mu_c, cov_c = ev.fid_stats()
    pred = logits.argmax(1)
    res = {"accuracy": round(float((pred == y).float().mean()), 4)}
    res["accuracy_per_class"] = {
        fmnist.CLASSES[c]: round(float((pred[y == c] == c).float().mean()), 4) for c in range(10)
    }
    m, c = mean_cov(feats)
    res["frechet_distance"] = round(frechet(m, c, mu_all, cov_all), 3)
    res["frechet_distance_per_class"] = {}
    for k in range(10):
        m, c = mean_cov(feats[y == k])
        res["frechet_distance_per_class"][fmnist.CLASSES[k]] = round(frechet(m, c, mu_c[k], cov_c[k]), 3)
    p = torch.softmax(logits.double(), 1)
    py = p.mean(0, keepdim=True)
    res["inception_score"] = round(float(torch.exp((p * (p.clamp_min(1e-12).log() - py.log())).sum(1).mean())), 4)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fashion-flow.pt")
    ap.add_argument("--eval", default="eval/fashion-eval.pt")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--save-samples", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    extra = {"model.json": ""}
    flow = torch.jit.load(args.model, _extra_files=extra)
    flow.eval()
    card = json.loads(extra["model.json"])
    ev = torch.jit.load(args.eval)
    ev.eval()
    labels = torch.arange(10).repeat_interleave(args.per_class)
    t0 = time.time()
    x = sample(flow, labels, args.steps, args.guidance, args.seed)
    t_sample = time.time() - t0
    if args.save_samples:
        np.save(args.save_samples, x.numpy().astype(np.float32))
    res = measure(ev, x.clamp(-1, 1), labels)
    # reference: the same number of real TRAIN images per class through the same estimator
    xtr, ytr = fmnist.load("train")
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.cat(
        [torch.nonzero(ytr == c).squeeze(1)[torch.randperm(6000, generator=g)[: args.per_class]] for c in range(10)]
    )
    ref = measure(ev, xtr[idx], ytr[idx])
    print(json.dumps(res, indent=1))
    print(
        "real-train reference (same sample size):",
        json.dumps({k: ref[k] for k in ("accuracy", "frechet_distance", "inception_score")}),
        "per-class FD",
        ref["frechet_distance_per_class"],
    )
    print(f"sampling time {t_sample:.1f}s for {labels.shape[0]} samples x {args.steps} steps")
    metrics = card.get("metrics", {})
    key = f"euler{args.steps}_guidance{args.guidance:g}"
    metrics[key] = {
        "measured_by": "eval/fashion-eval.pt (independent classifier; features 128-D; FD against real TEST split "
        "statistics)",
        "sampler": f"Euler, {args.steps} uniform steps sigma 1 -> 0, guidance {args.guidance:g}, seed {args.seed}",
        "samples_per_class": args.per_class,
        **res,
        "reference_real_train_same_sample_size": {
            "accuracy": ref["accuracy"],
            "frechet_distance": ref["frechet_distance"],
            "frechet_distance_per_class": ref["frechet_distance_per_class"],
            "inception_score": ref["inception_score"],
        },
        "command": "/usr/bin/python3 " + " ".join(sys.argv),
    }
    if args.steps == 50 and args.guidance == 1.0:
        metrics["class_accuracy"] = res["accuracy"]
        metrics["class_accuracy_per_class"] = res["accuracy_per_class"]
        metrics["frechet_distance"] = res["frechet_distance"]
        metrics["frechet_distance_per_class"] = res["frechet_distance_per_class"]
        metrics["headline"] = "class_accuracy / frechet_distance: Euler 50 steps, guidance 1.0"
    card["metrics"] = metrics
    if not args.no_write:
        torch.jit.save(flow, args.model, _extra_files={"model.json": json.dumps(card, indent=1)})
        print(f"wrote metrics into {args.model} card")


if __name__ == "__main__":
    main()

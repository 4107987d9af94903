"""Train a Fashion-MNIST classifier and export it as TorchScript with a model card.

  verifier: /usr/bin/python3 scripts/train/train_classifier.py --arch verifier --seed 1 \
              --out models/fashion-classifier.pt
  eval:     /usr/bin/python3 scripts/train/train_classifier.py --arch eval --seed 2 --out eval/fashion-eval.pt

Trains on the train split (55k; 5k held out for validation, used only for monitoring), with
random +-2 px translations. The test split is used once, at the end, for the reported accuracy
and (eval arch) the feature statistics stored in the module (fid_stats()).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from classifier_nets import EvalNet, VerifierNet  # noqa: E402


def shift_aug(x, gen, pad=2):
    n = x.shape[0]
    xp = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.empty_like(x)
    for i in range(2 * pad + 1):
        for j in range(2 * pad + 1):
            m = (dy == i) & (dx == j)
            if m.any():
                out[m] = xp[m, :, i : i + 28, j : j + 28]
    return out


@torch.no_grad()
def predict(model, x, bs=1000):
    model.eval()
    return torch.cat([model.logits(x[i : i + bs]) for i in range(0, x.shape[0], bs)])


@torch.no_grad()
def feats(model, x, bs=1000):
    model.eval()
    return torch.cat([model.features(x[i : i + bs]) for i in range(0, x.shape[0], bs)]).double()


def mean_cov(f):
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / (f.shape[0] - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["verifier", "eval"], required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = "/usr/bin/python3 " + " ".join(sys.argv)
    x, y = fmnist.load("train")
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(60000, generator=gen)
    xtr, ytr = x[perm[5000:]], y[perm[5000:]]
    xva, yva = x[perm[:5000]], y[perm[:5000]]
    model = VerifierNet() if args.arch == "verifier" else EvalNet()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    steps_per_epoch = xtr.shape[0] // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    t0 = time.time()
    curve = []
    for ep in range(args.epochs):
        model.train()
        p = torch.randperm(xtr.shape[0], generator=gen)
        tot = 0.0
        for k in range(steps_per_epoch):
            idx = p[k * args.batch : (k + 1) * args.batch]
            xb = shift_aug(xtr[idx], gen)
            loss = F.cross_entropy(model.logits(xb), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss)
        va = float((predict(model, xva).argmax(1) == yva).float().mean())
        curve.append({"epoch": ep + 1, "train_loss": round(tot / steps_per_epoch, 4), "val_acc": round(va, 4)})
        print(f"epoch {ep+1} loss {tot/steps_per_epoch:.4f} val_acc {va:.4f} {time.time()-t0:.0f}s", flush=True)
    train_time = time.time() - t0
    model.eval()
    xte, yte = fmnist.load("test")
    pred = predict(model, xte).argmax(1)
    acc = float((pred == yte).float().mean())
    per_class = {fmnist.CLASSES[c]: round(float((pred[yte == c] == c).float().mean()), 4) for c in range(10)}
    print(f"TEST accuracy {acc:.4f}", per_class, flush=True)
    metrics = {
        "test_accuracy": round(acc, 4),
        "test_accuracy_per_class": per_class,
        "measured_on": "Fashion-MNIST test split (10,000 images)",
    }
    if args.arch == "eval":
        f = feats(model, xte)
        mu, cov = mean_cov(f)
        model.mu_all.copy_(mu.float())
        model.cov_all.copy_(cov.float())
        for c in range(10):
            m_c, c_c = mean_cov(f[yte == c])
            model.mu_class[c].copy_(m_c.float())
            model.cov_class[c].copy_(c_c.float())
        # Inception-style score of the real test split with this classifier (reference value)
        pr = torch.softmax(predict(model, xte).double(), 1)
        py = pr.mean(0, keepdim=True)
        isc = float(torch.exp((pr * (pr.clamp_min(1e-12).log() - py.log())).sum(1).mean()))
        metrics["inception_score_test_split"] = round(isc, 4)
        print(f"IS(test) {isc:.4f}")
    sm = torch.jit.script(model)
    card = fmnist.base_card(
        "fashion-eval" if args.arch == "eval" else "fashion-classifier", "eval" if args.arch == "eval" else "verifier"
    )
    for k in ("prediction", "path"):
        card[k] = None
    card["input"] = "x0 [N,1,28,28] float32 in [-1,1] (clean samples)"
    card["methods"] = {
        "forward": "forward(x0, cond[N] int64) -> log p(cond | x0) [N] (log-softmax of the cond class; higher is "
        "better)",
        "logits": "logits(x0) -> [N,10]",
        "features": "features(x0) -> [N,128] (penultimate activations)",
    }
    if args.arch == "eval":
        card["methods"]["fid_stats"] = (
            "fid_stats() -> (mu_all[128], cov_all[128,128], mu_class[10,128], cov_class[10,128,128]): "
            "mean/covariance (unbiased) of features() over the real TEST split, overall and per class"
        )
        card["description"] = (
            "Independent evaluation classifier (LeNet-style, different architecture and seed from "
            "fashion-classifier). Never use it as a search verifier. Used for class accuracy, "
            "Inception-style score and Frechet distance on its 128-D features."
        )
    else:
        card[
            "description"
        ] = "Search verifier: class log-probability of the conditioning class; features() for self-supervised scoring."
    card["feature_dim"] = 128
    card["metrics"] = metrics
    card["provenance"] = {
        "training_data": "Fashion-MNIST train split (55,000 for training, 5,000 held out for validation), random "
        "+-2px shifts",
        "command": command,
        "seed": args.seed,
        "param_count": fmnist.count_params(model),
        "training_time_minutes": round(train_time / 60, 1),
        "epochs": args.epochs,
        "optimizer": f"AdamW one-cycle max lr {args.lr}, wd 5e-4, batch {args.batch}, label smoothing 0.05",
        "curve": curve,
        "hardware": "CPU",
        **fmnist.torch_info(),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    torch.jit.save(sm, args.out, _extra_files={"model.json": json.dumps(card, indent=1)})
    print(f"saved {args.out} params {card['provenance']['param_count']} time {train_time/60:.1f} min")


if __name__ == "__main__":
    main()

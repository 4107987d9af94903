"""Train the class-conditional rectified-flow U-Net on Fashion-MNIST (train split), CPU.

Path x_sigma = (1-sigma)*x0 + sigma*eps, target velocity v = eps - x0 (sigma=1 noise, 0 data).
Label dropout (null class 10) for classifier-free guidance. EMA with warmup. Time-budgeted:
--minutes is the TOTAL training wall time across resumes; the LR follows a cosine over it.
Checkpoints every --ckpt-every minutes to --ckpt (resumable with --resume). On finishing, the
EMA weights are exported with scripts/train/export_flow (models/fashion-flow.pt + card; metrics are
added by scripts/train/evaluate_flow.py).

  /usr/bin/python3 scripts/train/train_flow.py --minutes 55 --resume
--ch sets the U-Net widths (the small model: --ch 16,32,64 --ckpt checkpoints/flow-small.ckpt
--out models/fashion-flow-small.pt); the card's name is the --out file's base name.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from flow_net import FlowUNet  # noqa: E402

DEFAULT_CH = "32,64,128"


def parse_ch(text):
    ch = tuple(int(c) for c in text.split(","))
    if len(ch) != 3 or min(ch) < 1:
        raise SystemExit(f"--ch wants three positive channel widths like {DEFAULT_CH}, got {text!r}")
    return ch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=55.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt", default="checkpoints/flow.ckpt")
    ap.add_argument("--ckpt-every", type=float, default=3.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default="models/fashion-flow.pt")
    ap.add_argument("--ch", default=DEFAULT_CH, help="U-Net channel widths at 28/14/7, e.g. 16,32,64")
    args = ap.parse_args()
    arch = dict(ch=parse_ch(args.ch), edim=128, num_classes=11)
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = "/usr/bin/python3 " + " ".join(sys.argv)

    x_train, y_train = fmnist.load("train")
    n = x_train.shape[0]
    model = FlowUNet(arch["ch"], arch["edim"], arch["num_classes"])
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    step, epoch, pos, elapsed = 0, 0, 0, 0.0
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(n, generator=gen)
    curve = []
    if args.resume and os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt)
        if tuple(ck["arch"]["ch"]) != arch["ch"]:
            raise SystemExit(f"{args.ckpt} holds channels {list(ck['arch']['ch'])}, not --ch {args.ch}")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, epoch, pos, elapsed = ck["step"], ck["epoch"], ck["pos"], ck["elapsed"]
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["rng"])
        perm = ck["perm"]
        curve = ck.get("curve", [])
        print(f"resumed step {step} epoch {epoch} elapsed {elapsed/60:.1f} min", flush=True)
    print(f"params {fmnist.count_params(model)}  command: {command}", flush=True)

    def save_ckpt():
        tmp = args.ckpt + ".tmp"
        torch.save(
            dict(
                model=model.state_dict(),
                ema=ema.state_dict(),
                opt=opt.state_dict(),
                step=step,
                epoch=epoch,
                pos=pos,
                elapsed=elapsed,
                gen=gen.get_state(),
                rng=torch.get_rng_state(),
                perm=perm,
                curve=curve,
                args=vars(args),
                command=command,
                arch=arch,
            ),
            tmp,
        )
        os.replace(tmp, args.ckpt)

    budget = args.minutes * 60.0
    t_last = time.time()
    last_ck = elapsed
    run_loss = 0.0
    run_n = 0
    t_log = time.time()
    img_log = 0
    model.train()
    while elapsed < budget:
        if pos + args.batch > n:
            epoch += 1
            pos = 0
            perm = torch.randperm(n, generator=gen)
        idx = perm[pos : pos + args.batch]
        pos += args.batch
        x0 = x_train[idx]
        y = y_train[idx].clone()
        b = x0.shape[0]
        drop = torch.rand(b) < args.p_uncond
        y[drop] = fmnist.NULL_CLASS
        # logit-normal(0,1) noise levels, with 10% uniform to cover the ends
        sig = torch.sigmoid(torch.randn(b))
        uni = torch.rand(b) < 0.1
        sig = torch.where(uni, torch.rand(b), sig)
        eps = torch.randn_like(x0)
        s4 = sig.view(-1, 1, 1, 1)
        xt = (1 - s4) * x0 + s4 * eps
        frac = min(elapsed / budget, 1.0)
        lr = (
            args.lr
            * min(1.0, (step + 1) / args.warmup)
            * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        v = model(xt, sig, y)
        loss = F.mse_loss(v, eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        run_loss += float(loss)
        run_n += 1
        img_log += b
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % 100 == 0:
            rate = img_log / (now - t_log)
            print(
                f"step {step} epoch {epoch} loss {run_loss/run_n:.4f} lr {lr:.2e} {rate:.0f} img/s elapsed "
                f"{elapsed/60:.1f} min",
                flush=True,
            )
            curve.append([step, round(elapsed, 1), round(run_loss / run_n, 5)])
            run_loss = 0.0
            run_n = 0
            t_log = now
            img_log = 0
        if elapsed - last_ck > args.ckpt_every * 60:
            save_ckpt()
            last_ck = elapsed
    save_ckpt()
    print(f"done: {step} steps, {epoch} epochs + {pos} imgs, {elapsed/60:.1f} min", flush=True)
    import export_flow

    export_flow.export(args.ckpt, args.out)


if __name__ == "__main__":
    main()

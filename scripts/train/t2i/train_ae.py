"""Train the autoencoder (models/fashion-ae.pt): 1x28x28 pixels in [-1,1] <-> 4x7x7 latents.

  /usr/bin/python3 scripts/train/t2i/train_ae.py --minutes 10 --threads 1

Loss: MSE(decode(encode(x) + noise), x) + 1e-4 * mean(z^2). The small latent noise (5% of the batch's latent
std) and the weak L2 keep the decoder smooth around the latents a flow model will produce. After training,
per-channel mean/std of the raw latents over the train split are stored in the module (shift, scale):
encode() returns (z - shift) * scale (about zero mean, unit variance per channel), decode() inverts it.
The test split is used only at the end for the card's metrics.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fmnist  # noqa: E402
import prompts as P  # noqa: E402
from nets import AutoEncoder  # noqa: E402

ARCH = dict(latent_ch=4, ch=32)


@torch.no_grad()
def batched(fn, x, bs=1000):
    return torch.cat([fn(x[i : i + bs]) for i in range(0, x.shape[0], bs)])


@torch.no_grad()
def recon_metrics(ae, x, y, eval_path="eval/fashion-eval.pt"):
    r = batched(lambda t: ae.decode(ae.encode(t)), x)
    mse = float(((r - x) ** 2).mean())  # on the [-1,1] scale
    mse01 = mse / 4.0
    import math

    res = {
        "mse_pm1": round(mse, 5),
        "mse_01": round(mse01, 6),
        "psnr_db_01": round(10 * math.log10(1.0 / mse01), 2),
        "output_min": round(float(r.min()), 3),
        "output_max": round(float(r.max()), 3),
    }
    si, bi = P.attribute_ids(x, y)
    rs, rb = P.attribute_ids(r.clamp(-1, 1), y)
    res["attribute_agreement_size"] = round(float((rs == si).float().mean()), 4)
    res["attribute_agreement_brightness"] = round(float((rb == bi).float().mean()), 4)
    if os.path.exists(eval_path):
        ev = torch.jit.load(eval_path).eval()
        pr = batched(ev.logits, r.clamp(-1, 1)).argmax(1)
        pt = batched(ev.logits, x).argmax(1)
        res["eval_classifier_accuracy_reconstructions"] = round(float((pr == y).float().mean()), 4)
        res["eval_classifier_accuracy_originals"] = round(float((pt == y).float().mean()), 4)
    return res, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--latent-noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="models/fashion-ae.pt")
    ap.add_argument("--test-limit", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = common.command_line()
    x, y = fmnist.load("train")
    n = x.shape[0]
    ae = AutoEncoder(ARCH["latent_ch"], ARCH["ch"])
    opt = torch.optim.AdamW(ae.parameters(), lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(n, generator=gen)
    pos = 0
    epoch = 0
    step = 0
    elapsed = 0.0
    t_last = time.time()
    budget = args.minutes * 60
    curve = []
    run = 0.0
    rn = 0
    print(f"params {fmnist.count_params(ae)}; {command}", flush=True)
    ae.train()
    while elapsed < budget and (args.max_steps == 0 or step < args.max_steps):
        if pos + args.batch > n:
            perm = torch.randperm(n, generator=gen)
            pos = 0
            epoch += 1
        idx = perm[pos : pos + args.batch]
        pos += args.batch
        xb = x[idx]
        lr = common.lr_at(args.lr, elapsed / budget, step, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        z = ae.encode_raw(xb)
        zn = z + args.latent_noise * z.detach().std() * torch.randn(z.shape, generator=gen)
        r = ae.decode_raw(zn)
        rec = F.mse_loss(r, xb)
        loss = rec + 1e-4 * z.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        step += 1
        run += float(rec)
        rn += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % 100 == 0:
            print(
                f"step {step} epoch {epoch} recon mse {run / rn:.5f} lr {lr:.2e} elapsed {elapsed / 60:.1f} min",
                flush=True,
            )
            curve.append([step, round(elapsed, 1), round(run / rn, 5)])
            run = 0.0
            rn = 0
    ae.eval()
    with torch.no_grad():
        zr = batched(ae.encode_raw, x)
        mu = zr.mean(dim=(0, 2, 3))
        sd = zr.std(dim=(0, 2, 3))
        ae.shift.copy_(mu)
        ae.scale.copy_(1.0 / sd)
        zs = batched(ae.encode, x)
    latent_stats = {
        "raw_mean_per_channel": [round(float(v), 4) for v in mu],
        "raw_std_per_channel": [round(float(v), 4) for v in sd],
        "scaled_std_train": round(float(zs.std()), 4),
        "scaled_mean_train": round(float(zs.mean()), 4),
    }
    os.makedirs(common.CKPT_DIR, exist_ok=True)
    torch.save(
        dict(ae=ae.state_dict(), arch=ARCH, args=vars(args), step=step, elapsed=elapsed, command=command, curve=curve),
        os.path.join(common.CKPT_DIR, "ae.ckpt"),
    )
    xt, yt = fmnist.load("test")
    if args.test_limit:
        xt, yt = xt[: args.test_limit], yt[: args.test_limit]
    export(ae, xt, yt, latent_stats, command, args, step, elapsed, n, curve)


def export(ae, xt, yt, latent_stats, command, args, step, elapsed, n, curve):
    met, _ = recon_metrics(ae, xt, yt)
    met["measured_on"] = f"Fashion-MNIST test split ({xt.shape[0]} images), decode() output (clamped to [-1,1])"
    print("test", met, latent_stats, flush=True)
    card = {
        "name": "fashion-ae",
        "kind": "decoder",
        "prediction": None,
        "path": None,
        "description": "Convolutional autoencoder, 1x28x28 pixels in [-1,1] <-> 4x7x7 latents (per-channel scaled to "
        "about "
        "zero mean, unit variance). The decoder of fashion-t2i.",
        "latent_shape": [ARCH["latent_ch"], 7, 7],
        "image_shape": [1, 28, 28],
        "value_range": [-1.0, 1.0],
        "methods": {
            "encode": "encode(x[N,1,28,28] in [-1,1]) -> z[N,4,7,7] = (encoder(x) - shift) * scale",
            "decode": "decode(z[N,4,7,7]) -> x[N,1,28,28] clamped to [-1,1]",
            "forward": "forward(z) = decode(z)",
            "encode_raw / decode_raw": "the unscaled latent space",
        },
        "latent_scaling": latent_stats,
        "metrics": {"reconstruction_test": met},
        "license": fmnist.LICENSE,
        "provenance": {
            "training_data": "Fashion-MNIST train split (60,000 images)",
            "command": command,
            "seed": args.seed,
            "param_count": fmnist.count_params(ae),
            "training_steps": step,
            "batch_size": args.batch,
            "epochs": round(step * args.batch / n, 2),
            "training_time_minutes": round(elapsed / 60, 1),
            "optimizer": f"AdamW lr {args.lr} (warmup {args.warmup}, cosine over the time budget), grad clip 1",
            "loss": f"MSE(decode(z + {args.latent_noise}*std(z)*noise), x) + 1e-4 mean(z^2)",
            "architecture": f"encoder 3x3 convs {ARCH['ch'] // 2}@28 -> {ARCH['ch']}@14 -> {ARCH['ch']}@7 -> 1x1 to 4; "
            "decoder mirror with nearest upsampling; SiLU",
            "loss_curve_every_100_steps": curve[-4:],
            "hardware": f"CPU, {args.threads} thread(s)",
            **fmnist.torch_info(),
        },
    }
    common.save_scripted(torch.jit.script(ae), args.out, card)


def reexport(ckpt=os.path.join(common.CKPT_DIR, "ae.ckpt"), out="models/fashion-ae.pt"):
    """Re-export a trained checkpoint (e.g. after a change to decode()); recomputes the test metrics."""
    torch.set_num_threads(1)
    ck = torch.load(ckpt)
    ae = AutoEncoder(ck["arch"]["latent_ch"], ck["arch"]["ch"])
    ae.load_state_dict(ck["ae"])
    ae.eval()
    sd = 1.0 / ae.scale
    latent_stats = {
        "raw_mean_per_channel": [round(float(v), 4) for v in ae.shift],
        "raw_std_per_channel": [round(float(v), 4) for v in sd],
        "scaled_std_train": 1.0,
        "scaled_mean_train": 0.0,
    }
    a = argparse.Namespace(**ck["args"])
    a.out = out
    xt, yt = fmnist.load("test")
    export(ae, xt, yt, latent_stats, ck["command"], a, ck["step"], ck["elapsed"], 60000, ck["curve"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--reexport":
        reexport()
    else:
        main()

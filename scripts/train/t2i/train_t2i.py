"""Train the text-conditioned latent rectified-flow denoiser (models/fashion-t2i.pt).

  /usr/bin/python3 scripts/train/t2i/train_t2i.py --minutes 25 --threads 1 [--resume]
  # re-export the checkpoint's EMA weights:
  /usr/bin/python3 scripts/train/t2i/train_t2i.py --export-only [--note "..."]

Needs models/fashion-ae.pt (latents: encode() of the train split, ~unit variance) and models/fashion-text.pt
(frozen; its outputs for the 160 prompt variants are computed once). Path z_sigma = (1-sigma) z0 + sigma eps,
target v = eps - z0, sigma ~ logit-normal(0,1) with 10% uniform. Each attribute word is dropped with
probability 0.3; with probability 0.1 the whole condition is replaced by the learned null condition
(classifier-free guidance). EMA weights are exported (export()); metrics are added by scripts/train/t2i/evaluate.py.
--minutes is the TOTAL training time across resumes; the LR follows a cosine over it.
"""
import argparse
import copy
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fmnist  # noqa: E402
import prompts as P  # noqa: E402
from nets import T2IDenoiser  # noqa: E402

ARCH = dict(
    latent_ch=4, ch=64, edim=256, text_dim=64, max_len=P.MAX_LEN, depth=4, self_attn=False, cross_stages=[1], heads=2
)


@torch.no_grad()
def encode_all(ae, x, bs=1000):
    return torch.cat([ae.encode(x[i : i + bs]) for i in range(0, x.shape[0], bs)])


def build(arch):
    return T2IDenoiser(
        arch["latent_ch"],
        arch["ch"],
        arch["edim"],
        arch["text_dim"],
        arch["max_len"],
        arch["depth"],
        arch["self_attn"],
        tuple(arch["cross_stages"]),
        arch["heads"],
    )


def export(ckpt_path, out, keep_metrics=True, note=""):
    ck = torch.load(ckpt_path)
    arch = ck["arch"]
    a = ck["args"]
    m = build(arch)
    m.load_state_dict(ck["ema"])
    m.eval()
    sm = torch.jit.script(m)
    L, D = arch["max_len"], arch["text_dim"]
    card = {
        "name": "fashion-t2i",
        "kind": "denoiser",
        "prediction": "velocity",
        "path": "rectified_flow",
        "sample_shape": [arch["latent_ch"], 7, 7],
        "value_range": None,
        "description": "Text-conditioned latent rectified flow for Fashion-MNIST prompts 'a {size} {brightness} "
        "{class}' "
        "(attribute words optional). forward(x[N,4,7,7], sigma[N], text[N,L,D], text_mask[N,L]) -> v = eps - x0 "
        "in fashion-ae's scaled latent space; Euler step x += (sigma_to - sigma_from) * v; decode with "
        "fashion-ae.decode. Conditioning: fashion-text outputs, by cross-attention (each block) and FiLM from "
        "the masked mean pool. Guidance: v = v_null + w (v_cond - v_null), null from null_condition().",
        "conditions": [
            {"name": "text", "dtype": "float32", "shape": [L, D]},
            {"name": "text_mask", "dtype": "bool", "shape": [L]},
        ],
        "unconditional": {"method": "null_condition", "label_dropout": a["p_uncond"]},
        "text_encoder": "fashion-text",
        "decoder": {"model": "fashion-ae", "method": "decode", "image_shape": [1, 28, 28], "value_range": [-1.0, 1.0]},
        "methods": {
            "forward": f"forward(x float32[N,4,7,7], sigma float32[N], text float32[N,{L},{D}], text_mask bool[N,{L}]) "
            "-> velocity float32[N,4,7,7]",
            "null_condition": f"null_condition() -> (text float32[1,{L},{D}], text_mask bool[1,{L}]) (learned; tile to "
            "N)",
        },
        "sigma_range": [0.0, 1.0],
        "attributes": P.attributes_card(),
        "classes": P.CLASS_NAMES,
        "verifiers": ["fashion-clip"],
        "license": fmnist.LICENSE,
        "provenance": {
            "training_data": "Fashion-MNIST train split (60,000 images) encoded by fashion-ae; prompts from measured "
            "attributes",
            "command": ck["command"]
            + "   # resumable; EMA weights exported by scripts/train/t2i/train_t2i.py export()",
            "seed": a["seed"],
            "param_count": fmnist.count_params(m),
            "training_steps": ck["step"],
            "batch_size": a["batch"],
            "epochs": round(ck["step"] * a["batch"] / 60000.0, 2),
            "training_time_minutes": round(ck["elapsed"] / 60.0, 1),
            "optimizer": f"AdamW lr {a['lr']} (warmup {a['warmup']}, cosine over the time budget to 5%), grad clip 1",
            "ema": f"min({a['ema']}, (1+step)/(10+step)); exported weights are the EMA",
            "sigma_sampling": "logit-normal(0,1), 10% uniform",
            "prompt_dropout": f"each attribute word {P.P_DROP}; whole condition -> null {a['p_uncond']}",
            "architecture": f"7x7 latent net, {arch['ch']} channels: {arch['depth']} FiLM residual blocks (scale/shift "
            "from "
            f"sigma embedding + MLP of the masked mean-pooled text), cross-attention ({arch['heads']} heads) "
            f"to the text tokens plus a learned sink key after block(s) {arch['cross_stages']}"
            f"{', self-attention after every 2nd block' if arch['self_attn'] else ''}; embedding {arch['edim']}",
            "frozen_inputs": {"text_encoder": "models/fashion-text.pt", "autoencoder": "models/fashion-ae.pt"},
            "loss_curve_every_100_steps": ck.get("curve", [])[-5:],
            "hardware": f"CPU, {a['threads']} thread(s)",
            **fmnist.torch_info(),
        },
    }
    if note:
        card["provenance"]["note"] = note
    if keep_metrics and os.path.exists(out):
        _, old = common.read_card(out)
        if "metrics" in old:
            card["metrics"] = old["metrics"]
    common.save_scripted(sm, out, card)
    return card


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ae", default="models/fashion-ae.pt")
    ap.add_argument("--text", default="models/fashion-text.pt")
    ap.add_argument("--ckpt", default=os.path.join(common.CKPT_DIR, "t2i.ckpt"))
    ap.add_argument("--ckpt-every", type=float, default=3.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default="models/fashion-t2i.pt")
    ap.add_argument("--ch", type=int, default=ARCH["ch"])
    ap.add_argument("--depth", type=int, default=ARCH["depth"])
    ap.add_argument("--self-attn", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="only export --ckpt to --out (keeps the card's metrics)")
    ap.add_argument("--note", default="", help="free-text provenance note for the card (e.g. resumed runs)")
    args = ap.parse_args()
    if args.export_only:
        export(args.ckpt, args.out, note=args.note)
        return
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = common.command_line()
    arch = dict(ARCH, ch=args.ch, depth=args.depth, self_attn=args.self_attn)

    x, y = fmnist.load("train")
    si, bi = P.attribute_ids(x, y)
    ae = torch.jit.load(args.ae).eval()
    text_enc = torch.jit.load(args.text).eval()
    t0 = time.time()
    z = encode_all(ae, x)
    print(f"encoded {tuple(z.shape)} latents in {time.time() - t0:.0f}s, std {float(z.std()):.3f}", flush=True)
    with torch.no_grad():
        vs = P.all_variants()
        bank_t, bank_m = text_enc(P.tokenize([v[3] for v in vs]))
    n = z.shape[0]
    model = build(arch)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    step, epoch, pos, elapsed = 0, 0, 0, 0.0
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(n, generator=gen)
    curve = []
    if args.resume and os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, epoch, pos, elapsed = ck["step"], ck["epoch"], ck["pos"], ck["elapsed"]
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["rng"])
        perm = ck["perm"]
        curve = ck.get("curve", [])
        command = ck["command"]
        print(f"resumed step {step} elapsed {elapsed / 60:.1f} min", flush=True)
    print(f"params {fmnist.count_params(model)}  arch {arch}  command: {command}", flush=True)

    def save_ckpt():
        os.makedirs(os.path.dirname(args.ckpt), exist_ok=True)
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
    run = 0.0
    rn = 0
    model.train()
    while elapsed < budget and (args.max_steps == 0 or step < args.max_steps):
        if pos + args.batch > n:
            epoch += 1
            pos = 0
            perm = torch.randperm(n, generator=gen)
        idx = perm[pos : pos + args.batch]
        pos += args.batch
        z0 = z[idx]
        b = z0.shape[0]
        ds, db = P.drop_attributes(si[idx], bi[idx], gen)
        vid = P.variant_index(y[idx], ds, db)
        text, mask = bank_t[vid], bank_m[vid]
        unc = torch.rand(b, generator=gen) < args.p_uncond
        text = torch.where(unc.view(-1, 1, 1), model.null_text.expand(b, -1, -1), text)
        mask = mask | unc.view(-1, 1)
        sig = torch.sigmoid(torch.randn(b, generator=gen))
        sig = torch.where(torch.rand(b, generator=gen) < 0.1, torch.rand(b, generator=gen), sig)
        eps = torch.randn(z0.shape, generator=gen)
        s4 = sig.view(-1, 1, 1, 1)
        zt = (1 - s4) * z0 + s4 * eps
        lr = common.lr_at(args.lr, elapsed / budget, step, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = F.mse_loss(model(zt, sig, text, mask), eps - z0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        run += float(loss)
        rn += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % 100 == 0:
            print(
                f"step {step} epoch {epoch} loss {run / rn:.4f} lr {lr:.2e} elapsed {elapsed / 60:.1f} min", flush=True
            )
            curve.append([step, round(elapsed, 1), round(run / rn, 5)])
            run = 0.0
            rn = 0
        if elapsed - last_ck > args.ckpt_every * 60:
            save_ckpt()
            last_ck = elapsed
    save_ckpt()
    print(f"done: {step} steps, {elapsed / 60:.1f} min", flush=True)
    export(args.ckpt, args.out, note=args.note)


if __name__ == "__main__":
    main()

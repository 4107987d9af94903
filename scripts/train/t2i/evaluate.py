"""Evaluate the text-to-image stack and write the metrics into the fashion-t2i card (and docs/t2i/metrics.json).

  /usr/bin/python3 scripts/train/t2i/evaluate.py --threads 2

Held-out prompts: --prompts (100) full prompts "a {size} {brightness} {class}" taken from TEST-split images
(10 per class, drawn with --seed; class and measured attribute words of each image). For each prompt
--per-prompt (16) samples: Euler, --steps (20) uniform sigma steps 1 -> 0 in latent space, classifier-free
guidance w (v = v_null + w (v_cond - v_null); w = 1 is the plain conditional model), decoded by fashion-ae,
clamped to [-1,1]. Measured:
  class accuracy      eval/fashion-eval.pt (independent classifier, never a search verifier) argmax == class
  size / brightness   the attribute measured on the sample by the card's rule == the prompt's word
  all                 class, size and brightness all right
  clip                fashion-clip cosine with the prompt
Best-of-N (random search scored by fashion-clip): the 16 samples of each prompt are split into 16/N disjoint
groups; the sample with the highest CLIP score of each group is kept; metrics are averaged over groups.
NFE per prompt = N x steps (x 2 with guidance).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fmnist  # noqa: E402
import prompts as P  # noqa: E402


def held_out_prompts(n, seed):
    xt, yt = fmnist.load("test")
    si, bi = P.attribute_ids(xt, yt)
    g = torch.Generator().manual_seed(seed)
    per = n // 10
    idx = torch.cat(
        [torch.nonzero(yt == c).squeeze(1)[torch.randperm(int((yt == c).sum()), generator=g)[:per]] for c in range(10)]
    )
    return idx, yt[idx], si[idx], bi[idx], xt[idx]


@torch.no_grad()
def sample(t2i, text, mask, steps, guidance, gen, bs=800):
    out = []
    nt, nm = t2i.null_condition()
    sig = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(0, text.shape[0], bs):
        tb, mb = text[i : i + bs], mask[i : i + bs]
        n = tb.shape[0]
        x = torch.randn(n, 4, 7, 7, generator=gen)
        if guidance != 1.0:
            tt = torch.cat([tb, nt.expand(n, -1, -1)])
            mm = torch.cat([mb, nm.expand(n, -1)])
        for k in range(steps):
            s = torch.full((n,), float(sig[k]))
            if guidance == 1.0:
                v = t2i(x, s, tb, mb)
            else:
                vv = t2i(torch.cat([x, x]), torch.cat([s, s]), tt, mm)
                v = vv[n:] + guidance * (vv[:n] - vv[n:])
            x = x + (float(sig[k + 1]) - float(sig[k])) * v
        out.append(x)
    return torch.cat(out)


@torch.no_grad()
def score(imgs, y, si, bi, ev, clip, text, mask, bs=1000):
    pred = torch.cat([ev.logits(imgs[i : i + bs]).argmax(1) for i in range(0, imgs.shape[0], bs)])
    cs = torch.cat([clip(imgs[i : i + bs], text[i : i + bs], mask[i : i + bs]) for i in range(0, imgs.shape[0], bs)])
    ps, pb = P.attribute_ids(imgs, y)
    return {
        "cls": (pred == y).float(),
        "size": (ps == si).float(),
        "bright": (pb == bi).float(),
        "all": ((pred == y) & (ps == si) & (pb == bi)).float(),
        "clip": cs,
    }


def summarize(d, sel=None):
    r = lambda k: round(float((d[k] if sel is None else d[k][sel]).mean()), 4)  # noqa: E731
    return {
        "class_accuracy": r("cls"),
        "size_accuracy": r("size"),
        "brightness_accuracy": r("bright"),
        "all_three_accuracy": r("all"),
        "clip_score": r("clip"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--t2i", default="models/fashion-t2i.pt")
    ap.add_argument("--ae", default="models/fashion-ae.pt")
    ap.add_argument("--text", default="models/fashion-text.pt")
    ap.add_argument("--clip", default="models/fashion-clip.pt")
    ap.add_argument("--eval", default="eval/fashion-eval.pt")
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--per-prompt", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", default="1,2,3")
    ap.add_argument("--best-of", default="1,2,4,8,16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--figdir", default="docs/t2i")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    command = common.command_line()
    t2i, card = common.read_card(args.t2i)
    ae = torch.jit.load(args.ae).eval()
    text_enc = torch.jit.load(args.text).eval()
    clip = torch.jit.load(args.clip).eval()
    ev = torch.jit.load(args.eval).eval()
    t2i.eval()
    idx, y, si, bi, xreal = held_out_prompts(args.prompts, args.seed)
    texts = [P.prompt(int(c), int(s), int(b)) for c, s, b in zip(y, si, bi)]
    with torch.no_grad():
        pt, pm = text_enc(P.tokenize(texts))
    K = args.per_prompt
    rep = lambda t: t.repeat_interleave(K, 0)  # noqa: E731
    Y, S, B, T, M = rep(y), rep(si), rep(bi), rep(pt), rep(pm)
    res = {
        "prompts": f"{args.prompts} full prompts from test-split images (10 per class, seed {args.seed})",
        "sampler": f"Euler {args.steps} uniform steps sigma 1 -> 0 (latent), decoded by fashion-ae, clamped to [-1,1]",
        "samples_per_prompt": K,
        "measured_by": "class: eval/fashion-eval.pt; attributes: card rule on the sample; clip: fashion-clip",
        "command": command,
    }
    real = score(xreal, y, si, bi, ev, clip, pt, pm)
    res["reference_real_test_images"] = summarize(real)
    os.makedirs(args.figdir, exist_ok=True)
    per_guidance = {}
    for w in [float(v) for v in args.guidance.split(",")]:
        gen = torch.Generator().manual_seed(args.seed + 1)
        t0 = time.time()
        zs = sample(t2i, T, M, args.steps, w, gen)
        with torch.no_grad():
            imgs = torch.cat([ae.decode(zs[i : i + 1000]) for i in range(0, zs.shape[0], 1000)]).clamp(-1, 1)
        dt = time.time() - t0
        d = score(imgs, Y, S, B, ev, clip, T, M)
        nfe_one = args.steps * (1 if w == 1.0 else 2)
        entry = {
            "guidance": w,
            "nfe_per_sample": nfe_one,
            "sampling_seconds": round(dt, 1),
            **summarize(d),
            "per_class_accuracy": {fmnist.CLASSES[c]: round(float(d["cls"][Y == c].mean()), 4) for c in range(10)},
        }
        # best-of-N by CLIP score
        bon = {}
        cl = d["clip"].view(-1, K)
        for nb in [int(v) for v in args.best_of.split(",") if int(v) <= K]:
            g = cl.view(-1, K // nb, nb)
            best = g.argmax(2)  # [P, K/nb]
            flat = (
                torch.arange(args.prompts).view(-1, 1) * K + torch.arange(K // nb).view(1, -1) * nb + best
            ).flatten()
            bon[str(nb)] = {"nfe_per_prompt": nb * nfe_one, **summarize(d, flat)}
        entry["best_of_n_by_clip"] = bon
        per_guidance[f"{w:g}"] = entry
        print(json.dumps({k: v for k, v in entry.items() if k != "per_class_accuracy"}), flush=True)
        # figures: 8 samples for 3 prompts per class; real image | first sample | best-of-K by CLIP
        sel = torch.cat([torch.arange(c * (args.prompts // 10), c * (args.prompts // 10) + 3) for c in range(10)])
        rows = torch.cat([imgs.view(args.prompts, K, 1, 28, 28)[sel, :8]]).reshape(-1, 1, 28, 28)
        common.write_png(os.path.join(args.figdir, f"samples-g{w:g}.png"), common.grid(rows, 8))
        if w == 1.0:
            with open(os.path.join(args.figdir, "samples-prompts.txt"), "w") as f:
                f.write("rows of samples-g*.png (8 samples each, seeds fixed):\n")
                for i in sel.tolist():
                    f.write(texts[i] + "\n")
            bestimg = imgs.view(args.prompts, K, 1, 28, 28)[torch.arange(args.prompts), cl.argmax(1)]
            pair = torch.stack([xreal[sel], imgs.view(args.prompts, K, 1, 28, 28)[sel, 0], bestimg[sel]], 1).reshape(
                -1, 1, 28, 28
            )
            common.write_png(os.path.join(args.figdir, "real-plain-best.png"), common.grid(pair, 6))
    res["by_guidance"] = per_guidance
    # attribute control figure: one class, 3 sizes x 3 brightness, 6 samples each, guidance 2
    gen = torch.Generator().manual_seed(args.seed + 2)
    cells = [(c, s, b) for c in (0, 9) for s in range(3) for b in range(3)]
    with torch.no_grad():
        ct, cm = text_enc(P.tokenize([P.prompt(*c) for c in cells]))
        zz = sample(t2i, ct.repeat_interleave(6, 0), cm.repeat_interleave(6, 0), args.steps, 2.0, gen)
        im = ae.decode(zz).clamp(-1, 1)
    common.write_png(os.path.join(args.figdir, "attributes-g2.png"), common.grid(im, 6 * 3))
    with open(os.path.join(args.figdir, "attributes-prompts.txt"), "w") as f:
        f.write("attributes-g2.png: 6 samples per prompt, 3 prompts per row (guidance 2):\n")
        for i in range(0, len(cells), 3):
            f.write(" | ".join(P.prompt(*c) for c in cells[i : i + 3]) + "\n")
    print(json.dumps(res["reference_real_test_images"]))
    with open(os.path.join(args.figdir, "metrics.json"), "w") as f:
        json.dump(res, f, indent=1)
    if not args.no_write:
        metrics = card.get("metrics", {})
        metrics["held_out_prompts"] = res
        h = per_guidance.get("1") or next(iter(per_guidance.values()))
        metrics["headline"] = {
            k: h[k]
            for k in (
                "guidance",
                "class_accuracy",
                "size_accuracy",
                "brightness_accuracy",
                "all_three_accuracy",
                "clip_score",
            )
        }
        metrics["headline"]["sampler"] = f"Euler {args.steps} steps"
        card["metrics"] = metrics
        common.save_scripted(t2i, args.t2i, card)


if __name__ == "__main__":
    main()

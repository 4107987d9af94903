"""Train the text encoder (models/fashion-text.pt) jointly with the CLIP-like verifier (models/fashion-clip.pt).

  /usr/bin/python3 scripts/train/t2i/train_clip.py --minutes 10 --threads 1

Data: Fashion-MNIST train split; each image's prompt is "a {size} {brightness} {class}" from its measured
attributes (scripts/train/t2i/prompts.py), each attribute word dropped with probability 0.3.
Loss ("consistency" contrastive, because the prompt space is small and prompts repeat within a batch):
  image -> text: softmax over all 160 prompt variants (10 classes x {any,small,medium,large} x
                 {any,dark,grey,bright}); the positives are every variant consistent with the image
                 (its class; each attribute word omitted or equal to the image's); loss -log sum_pos p.
  text -> image: for each sampled (dropped) prompt in the batch, softmax over the batch's images; the
                 positives are the images consistent with that prompt; loss -log sum_pos p.
The test split is used only at the end, for the zero-shot metrics written into the card.
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
from nets import ClipVerifier, TextEncoder  # noqa: E402

ARCH = dict(text_dim=64, text_layers=2, text_heads=4, embed_dim=64)


def variant_tables():
    vs = P.all_variants()
    tokens = P.tokenize([v[3] for v in vs])
    vc = torch.tensor([v[0] for v in vs])
    vsz = torch.tensor([v[1] for v in vs])
    vb = torch.tensor([v[2] for v in vs])
    return vs, tokens, vc, vsz, vb


def consistent(c_img, s_img, b_img, vc, vs, vb):
    """[N_img, N_var] bool: variant (vc, vs, vb) describes image (c, s, b) (-1 = any)."""
    return (
        (c_img[:, None] == vc[None, :])
        & ((vs[None, :] < 0) | (vs[None, :] == s_img[:, None]))
        & ((vb[None, :] < 0) | (vb[None, :] == b_img[:, None]))
    )


def multi_pos_nll(logits, pos):
    return -(torch.logsumexp(logits.masked_fill(~pos, -1e9), dim=1) - torch.logsumexp(logits, dim=1)).mean()


@torch.no_grad()
def zero_shot(text_enc, clip, x, y, si, bi, bs=1000):
    """Zero-shot retrieval accuracy: class over the 10 prompts "a {class}"; size (brightness) over the 3 prompts
    "a {size} {class}" ("a {brightness} {class}") of the TRUE class; full over all 90 full prompts."""
    text_enc.eval()
    clip.eval()
    feats = torch.cat([clip.features(x[i : i + bs]) for i in range(0, x.shape[0], bs)])

    def tf(texts):
        t, m = text_enc(P.tokenize(texts))
        return clip.text_features(t, m)

    cls_t = tf([P.prompt(c) for c in range(10)])
    pred_c = (feats @ cls_t.T).argmax(1)
    size_t = tf([P.prompt(c, s, -1) for c in range(10) for s in range(3)]).view(10, 3, -1)
    br_t = tf([P.prompt(c, -1, b) for c in range(10) for b in range(3)]).view(10, 3, -1)
    pred_s = torch.einsum("ne,nke->nk", feats, size_t[y]).argmax(1)
    pred_b = torch.einsum("ne,nke->nk", feats, br_t[y]).argmax(1)
    full = [(c, s, b) for c in range(10) for s in range(3) for b in range(3)]
    full_t = tf([P.prompt(*f) for f in full])
    fi = (feats @ full_t.T).argmax(1)
    fc = torch.tensor([f[0] for f in full])[fi]
    fs = torch.tensor([f[1] for f in full])[fi]
    fb = torch.tensor([f[2] for f in full])[fi]
    r = lambda t: round(float(t.float().mean()), 4)  # noqa: E731
    return {
        "class_accuracy_10_prompts": r(pred_c == y),
        "class_accuracy_per_class": {fmnist.CLASSES[c]: r(pred_c[y == c] == c) for c in range(10)},
        "size_accuracy_given_class": r(pred_s == si),
        "brightness_accuracy_given_class": r(pred_b == bi),
        "full_prompt_accuracy_90_prompts": r((fc == y) & (fs == si) & (fb == bi)),
        "full_prompt_class_accuracy": r(fc == y),
        "chance": {"class": 0.1, "size": 0.3333, "brightness": 0.3333, "full": round(1 / 90, 4)},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time budget only)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--text-out", default="models/fashion-text.pt")
    ap.add_argument("--clip-out", default="models/fashion-clip.pt")
    ap.add_argument("--test-limit", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = common.command_line()

    x, y = fmnist.load("train")
    si, bi = P.attribute_ids(x, y)
    vs, vtok, vc, vsz, vb = variant_tables()
    text_enc = TextEncoder(len(P.VOCAB), P.MAX_LEN, ARCH["text_dim"], ARCH["text_layers"], ARCH["text_heads"])
    clip = ClipVerifier(ARCH["text_dim"], ARCH["embed_dim"])
    params = list(text_enc.parameters()) + list(clip.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(args.seed)
    n = x.shape[0]
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
    print(f"params text {fmnist.count_params(text_enc)} clip {fmnist.count_params(clip)}; {command}", flush=True)
    text_enc.train()
    clip.train()
    while elapsed < budget and (args.max_steps == 0 or step < args.max_steps):
        if pos + args.batch > n:
            perm = torch.randperm(n, generator=gen)
            pos = 0
            epoch += 1
        idx = perm[pos : pos + args.batch]
        pos += args.batch
        xb, yb, sb, bb = x[idx], y[idx], si[idx], bi[idx]
        ds, db = P.drop_attributes(sb, bb, gen)
        vid = P.variant_index(yb, ds, db)
        lr = common.lr_at(args.lr, elapsed / budget, step, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        t, m = text_enc(vtok)  # all 160 variants
        tf_all = clip.text_features(t, m)  # [160,E]
        imf = clip.features(xb)  # [B,E]
        scale = clip.logit_scale.exp().clamp(max=100.0)
        pos_iv = consistent(yb, sb, bb, vc, vsz, vb)  # [B,160]
        l_i2t = multi_pos_nll(scale * imf @ tf_all.T, pos_iv)
        tfb = tf_all[vid]  # [B,E] the batch's prompts
        pos_ti = pos_iv[:, vid].T  # [B_text, B_img]
        l_t2i = multi_pos_nll(scale * tfb @ imf.T, pos_ti)
        loss = 0.5 * (l_i2t + l_t2i)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        run += float(loss)
        rn += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % 50 == 0:
            print(
                f"step {step} epoch {epoch} loss {run / rn:.4f} (i2t {float(l_i2t):.3f} t2i {float(l_t2i):.3f}) "
                f"scale {float(scale):.1f} lr {lr:.2e} elapsed {elapsed / 60:.1f} min",
                flush=True,
            )
            curve.append([step, round(elapsed, 1), round(run / rn, 4)])
            run = 0.0
            rn = 0
    train_time = elapsed
    text_enc.eval()
    clip.eval()
    os.makedirs(common.CKPT_DIR, exist_ok=True)
    torch.save(
        dict(
            text=text_enc.state_dict(),
            clip=clip.state_dict(),
            arch=ARCH,
            args=vars(args),
            step=step,
            elapsed=elapsed,
            command=command,
            curve=curve,
        ),
        os.path.join(common.CKPT_DIR, "clip.ckpt"),
    )

    xt, yt = fmnist.load("test")
    if args.test_limit:
        xt, yt = xt[: args.test_limit], yt[: args.test_limit]
    sit, bit = P.attribute_ids(xt, yt)
    zs = zero_shot(text_enc, clip, xt, yt, sit, bit)
    zs["measured_on"] = f"Fashion-MNIST test split ({xt.shape[0]} images), attributes measured on each image"
    print("zero-shot", zs, flush=True)

    prov = {
        "training_data": "Fashion-MNIST train split (60,000 images) with measured-attribute prompts, word dropout 0.3",
        "command": command,
        "seed": args.seed,
        "training_steps": step,
        "batch_size": args.batch,
        "epochs": round(step * args.batch / n, 2),
        "training_time_minutes": round(train_time / 60, 1),
        "optimizer": f"AdamW lr {args.lr} (warmup {args.warmup}, cosine over the time budget), wd 1e-4, grad clip 1",
        "loss": "symmetric multi-positive InfoNCE (image->160 prompt variants, prompt->batch images), learned "
        "temperature",
        "loss_curve_every_50_steps": curve[-4:],
        "hardware": f"CPU, {args.threads} thread(s)",
        **fmnist.torch_info(),
    }
    text_card = {
        "name": "fashion-text",
        "kind": "text_encoder",
        "description": "Word-level transformer text encoder (2 pre-LN layers, 4 heads) for Fashion-MNIST prompts; the "
        "text "
        "tower of fashion-clip, frozen when fashion-t2i was trained.",
        "vocab": P.VOCAB,
        "max_len": P.MAX_LEN,
        "pad_id": P.PAD_ID,
        "unk_id": P.UNK_ID,
        "tokenizer": "lowercase words, strip [^a-z/-], unknown -> 1",
        "tokenizer_rule": P.TOKENIZER_RULE,
        "inputs": ["tokens"],
        "outputs": ["text", "text_mask"],
        "methods": {
            "forward": f"forward(tokens int64[N,L<={P.MAX_LEN}]) -> (text float32[N,L,{ARCH['text_dim']}] "
            "(zero at padded positions), text_mask bool[N,L] = tokens != 0)"
        },
        "dim": ARCH["text_dim"],
        "prompt_template": "a {size} {brightness} {class}",
        "classes": P.CLASS_NAMES,
        "license": fmnist.LICENSE,
        "provenance": {**prov, "param_count": fmnist.count_params(text_enc), "trained_with": "fashion-clip"},
    }
    clip_card = {
        "name": "fashion-clip",
        "kind": "verifier",
        "prediction": None,
        "path": None,
        "description": "CLIP-like image-text verifier: cosine between the image embedding (small CNN) and the text "
        "embedding (fashion-text outputs, masked mean pool, 2-layer MLP projection). Higher = better match.",
        "inputs": ["x0", "text", "text_mask"],
        "input": "x0 [N,1,28,28] float32 in [-1,1]; text [N,L,64], text_mask [N,L] bool from fashion-text",
        "text_encoder": "fashion-text",
        "methods": {
            "forward": "forward(x0, text, text_mask) -> cosine [N] in [-1,1]",
            "features": f"features(x0) -> [N,{ARCH['embed_dim']}] unit-norm image embeddings",
            "text_features": f"text_features(text, text_mask) -> [N,{ARCH['embed_dim']}] unit-norm text embeddings",
        },
        "feature_dim": ARCH["embed_dim"],
        "sample_shape": [1, 28, 28],
        "value_range": [-1.0, 1.0],
        "classes": P.CLASS_NAMES,
        "attributes": P.attributes_card(),
        "metrics": {"zero_shot_test": zs},
        "license": fmnist.LICENSE,
        "provenance": {
            **prov,
            "param_count": fmnist.count_params(clip),
            "logit_scale": round(float(clip.logit_scale.exp()), 3),
        },
    }
    common.save_scripted(torch.jit.script(text_enc), args.text_out, text_card)
    common.save_scripted(torch.jit.script(clip), args.clip_out, clip_card)


if __name__ == "__main__":
    main()

"""Check the exported text-to-image models: each loads with torch.jit.load, has its card, and gives the same
outputs as the eager model rebuilt from its checkpoint (checkpoints/t2i/*.ckpt; max abs diff printed).

  /usr/bin/python3 scripts/train/t2i/check.py [--models models] [--ckpt-dir checkpoints/t2i]

Without the checkpoints (a fresh clone) it still checks loading, cards, shapes, dtypes and finiteness.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fmnist  # noqa: E402
import prompts as P  # noqa: E402
from nets import AutoEncoder, ClipVerifier, TextEncoder  # noqa: E402

TOL = 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="models")
    ap.add_argument("--ckpt-dir", default=common.CKPT_DIR)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ok = True

    def report(name, diff):
        nonlocal ok
        good = diff <= TOL
        ok &= good
        print(f"  {name}: max abs diff {diff:.3g} {'OK' if good else 'FAIL'}")

    def need(cond, what):
        nonlocal ok
        ok &= bool(cond)
        print(f"  {what}: {'OK' if cond else 'FAIL'}")

    paths = {k: os.path.join(args.models, f"fashion-{k}.pt") for k in ("text", "clip", "ae", "t2i")}
    text_s, text_card = common.read_card(paths["text"])
    clip_s, clip_card = common.read_card(paths["clip"])
    ae_s, ae_card = common.read_card(paths["ae"])
    t2i_s, t2i_card = common.read_card(paths["t2i"])
    for m in (text_s, clip_s, ae_s, t2i_s):
        m.eval()
    x, y = fmnist.load("test")
    x = x[:64]
    y = y[:64]
    si, bi = P.attribute_ids(x, y)
    texts = [P.prompt(int(c), int(s), int(b)) for c, s, b in zip(y, si, bi)]
    texts[0] = "A Large, BRIGHT t-shirt/top!"
    texts[1] = "a bag"
    texts[2] = ""
    texts[3] = "a purple ankle boot"
    tok = P.tokenize(texts)

    print("fashion-text")
    need(text_card.get("name") == "fashion-text" and text_card.get("kind") == "text_encoder", "card name/kind")
    need(
        text_card.get("vocab") == P.VOCAB
        and text_card.get("max_len") == P.MAX_LEN
        and text_card.get("pad_id") == 0
        and text_card.get("unk_id") == 1,
        "card vocab/max_len/pad/unk",
    )
    need(tok[0].tolist()[:4] == [P.WORD_TO_ID[w] for w in ["a", "large", "bright", "t-shirt/top"]], "tokenizer example")
    need(tok[3].tolist()[:4] == [2, 1, 18, 19], "unknown word -> 1")
    with torch.no_grad():
        t, m = text_s(tok)
    need(
        t.dtype == torch.float32
        and tuple(t.shape) == (64, P.MAX_LEN, text_card["dim"])
        and m.dtype == torch.bool
        and torch.equal(m, tok != 0)
        and bool(torch.isfinite(t).all()),
        "outputs shape/dtype/mask/finite (incl. empty prompt)",
    )

    print("fashion-clip")
    need(
        clip_card.get("kind") == "verifier" and clip_card.get("inputs") == ["x0", "text", "text_mask"],
        "card kind/inputs",
    )
    with torch.no_grad():
        cs = clip_s(x, t, m)
        f = clip_s.features(x)
    need(
        tuple(cs.shape) == (64,) and bool(torch.isfinite(cs).all()) and float(cs.abs().max()) <= 1.0 + 1e-5,
        "forward [N] cosine",
    )
    need(tuple(f.shape) == (64, clip_card["feature_dim"]), "features [N,E]")

    print("fashion-ae")
    need(ae_card.get("kind") == "decoder" and ae_card.get("latent_shape") == [4, 7, 7], "card kind/latent_shape")
    with torch.no_grad():
        z = ae_s.encode(x)
        r = ae_s.decode(z)
        r2 = ae_s(z)
    need(
        tuple(z.shape) == (64, 4, 7, 7) and tuple(r.shape) == (64, 1, 28, 28) and torch.equal(r, r2),
        "encode/decode/forward shapes",
    )
    print(f"  latent std {float(z.std()):.3f}, recon mse {float(((r - x) ** 2).mean()):.4f}")

    print("fashion-t2i")
    c = t2i_card
    L, D = P.MAX_LEN, text_card["dim"]
    need(
        c.get("kind") == "denoiser"
        and c.get("prediction") == "velocity"
        and c.get("path") == "rectified_flow"
        and c.get("sample_shape") == [4, 7, 7]
        and c.get("value_range") is None,
        "card kind/prediction/path/shape/range",
    )
    need(
        c.get("conditions")
        == [
            {"name": "text", "dtype": "float32", "shape": [L, D]},
            {"name": "text_mask", "dtype": "bool", "shape": [L]},
        ],
        "card conditions",
    )
    need(
        c.get("unconditional", {}).get("method") == "null_condition"
        and c.get("text_encoder") == "fashion-text"
        and c.get("decoder", {}).get("model") == "fashion-ae",
        "card unconditional/text_encoder/decoder",
    )
    zt = torch.randn(64, 4, 7, 7)
    sg = torch.rand(64)
    with torch.no_grad():
        v = t2i_s(zt, sg, t, m)
        nt, nm = t2i_s.null_condition()
        vn = t2i_s(zt, sg, nt.expand(64, -1, -1), nm.expand(64, -1))
    need(
        tuple(v.shape) == (64, 4, 7, 7) and bool(torch.isfinite(v).all()) and bool(torch.isfinite(vn).all()),
        "forward finite (incl. empty prompt, null)",
    )
    need(
        tuple(nt.shape) == (1, L, D)
        and nt.dtype == torch.float32
        and tuple(nm.shape) == (1, L)
        and nm.dtype == torch.bool,
        "null_condition shapes/dtypes",
    )

    d = args.ckpt_dir
    if os.path.exists(os.path.join(d, "clip.ckpt")):
        print("eager vs scripted")
        ck = torch.load(os.path.join(d, "clip.ckpt"))
        a = ck["arch"]
        te = TextEncoder(len(P.VOCAB), P.MAX_LEN, a["text_dim"], a["text_layers"], a["text_heads"])
        te.load_state_dict(ck["text"])
        te.eval()
        cv = ClipVerifier(a["text_dim"], a["embed_dim"])
        cv.load_state_dict(ck["clip"])
        cv.eval()
        with torch.no_grad():
            te_t, te_m = te(tok)
            report("fashion-text forward", float((te_t - t).abs().max()))
            report("fashion-clip forward", float((cv(x, t, m) - cs).abs().max()))
            report("fashion-clip features", float((cv.features(x) - f).abs().max()))
    if os.path.exists(os.path.join(d, "ae.ckpt")):
        ck = torch.load(os.path.join(d, "ae.ckpt"))
        ae = AutoEncoder(ck["arch"]["latent_ch"], ck["arch"]["ch"])
        ae.load_state_dict(ck["ae"])
        ae.eval()
        with torch.no_grad():
            report("fashion-ae encode", float((ae.encode(x) - z).abs().max()))
            report("fashion-ae decode", float((ae.decode(z) - r).abs().max()))
    if os.path.exists(os.path.join(d, "t2i.ckpt")):
        import train_t2i

        ck = torch.load(os.path.join(d, "t2i.ckpt"))
        mm = train_t2i.build(ck["arch"])
        mm.load_state_dict(ck["ema"])
        mm.eval()
        with torch.no_grad():
            report("fashion-t2i forward", float((mm(zt, sg, t, m) - v).abs().max()))
            report("fashion-t2i null_condition", float((mm.null_condition()[0] - nt).abs().max()))
    for k, p in paths.items():
        print(f"{p}: {os.path.getsize(p) / 1e6:.2f} MB")
    print("ALL OK" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

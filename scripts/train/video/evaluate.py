"""Judge the video flow by the eval models and write the numbers onto its card (models/fashion-video.pt).

  /usr/bin/python3 scripts/train/video/evaluate.py --per-prompt 5 --guidance 1,2 [--threads 1]

Every prompt "a {class} moving {direction}" (10 x 4) gets --per-prompt clips from Euler with 20 uniform steps
(sigma 1 -> 0), seed 1234, plain sampling (no search). Judged by eval/video-class-eval.pt (clip class = argmax
of the mean frame log-probs), eval/video-direction-eval.pt (argmax over left/right/up/down) and frame agreement
(the fraction of frames whose own eval class is the clip's class: the object stays one object). Real clips of
TEST-split garments are judged the same way as a reference. Also writes checkpoints/video/eval_grid_g{w}.png.
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402

sys.path.append(os.path.join(HERE, "..", "t2i"))
import common  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def load_evals():
    return (torch.jit.load(os.path.join(ROOT, "eval", "video-class-eval.pt")).eval(),
            torch.jit.load(os.path.join(ROOT, "eval", "video-direction-eval.pt")).eval())


@torch.no_grad()
def judge(x, cls, direction, evals):
    """Per-clip judgements of clips x [n,8,1,32,32]: dict of bool/float tensors [n]."""
    ce, de = evals
    out = {"class": [], "direction": [], "agreement": []}
    for i in range(0, x.shape[0], 100):
        xs = x[i : i + 100].clamp(-1, 1)
        pred = ce.logits(xs).argmax(1)
        out["class"].append(pred == cls[i : i + 100])
        out["direction"].append(de.logits(xs).argmax(1) == direction[i : i + 100])
        out["agreement"].append((ce.frame_logits(xs).argmax(2) == pred[:, None]).float().mean(1))
    return {k: torch.cat(v) for k, v in out.items()}


def summary(j):
    return dict(class_accuracy=round(float(j["class"].float().mean()), 4),
                direction_accuracy=round(float(j["direction"].float().mean()), 4),
                both_accuracy=round(float((j["class"] & j["direction"]).float().mean()), 4),
                frame_agreement=round(float(j["agreement"].mean()), 4))


@torch.no_grad()
def sample(model, tokens, steps, guidance, gen, bs=50):
    out = []
    nt, nm = model.null_condition()
    for i in range(0, tokens.shape[0], bs):
        tk = tokens[i : i + bs]
        n = tk.shape[0]
        text, mask = D.one_hot_text(tk)
        x = torch.randn(n, D.T, 1, D.H, D.W, generator=gen)
        sig = torch.linspace(1, 0, steps + 1)
        for k in range(steps):
            s = torch.full((n,), float(sig[k]))
            v = model(x, s, text, mask)
            if guidance != 1.0:
                vu = model(x, s, nt.expand(n, -1, -1), nm.expand(n, -1))
                v = vu + guidance * (v - vu)
            x = x + (sig[k + 1] - sig[k]) * v
        out.append(x)
    return torch.cat(out)


def per_group(j, cls, direction):
    by_c = {D.CLASS_NAMES[c]: round(float(j["class"][cls == c].float().mean()), 3) for c in range(10)}
    by_d = {D.DIRECTIONS[d]: round(float(j["direction"][direction == d].float().mean()), 3) for d in range(4)}
    return by_c, by_d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-prompt", type=int, default=5)
    ap.add_argument("--guidance", default="1,2")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "fashion-video.pt"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    evals = load_evals()
    model, card = common.read_card(args.model)
    model.eval()
    pairs = [(c, d) for c in range(10) for d in range(4) for _ in range(args.per_prompt)]
    cls = torch.tensor([p[0] for p in pairs])
    direction = torch.tensor([p[1] for p in pairs])
    tokens = torch.tensor([D.tokenize(D.prompt_of(c, d)) for c, d in pairs])
    gs, ys = D.garments("test")
    xr, cr, dr = D.sample_clips(gs, ys, 400, torch.Generator().manual_seed(99))
    metrics = dict(
        measured_by="eval/video-class-eval.pt (class, frame agreement) and eval/video-direction-eval.pt (direction); "
        "trained on TEST-split clips, other architectures and seeds than the verifiers; never verifiers",
        prompts=f"all 40 prompts 'a {{class}} moving {{direction}}', {args.per_prompt} clips each",
        sampler=f"Euler {args.steps} uniform steps sigma 1 -> 0, plain sampling (no search), seed 1234",
        command="/usr/bin/python3 " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        reference_real_test_clips=summary(judge(xr, cr, dr, evals)),
        by_guidance={},
    )
    for w in [float(g) for g in args.guidance.split(",")]:
        t0 = time.time()
        x = sample(model, tokens, args.steps, w, torch.Generator().manual_seed(1234))
        secs = time.time() - t0
        j = judge(x, cls, direction, evals)
        by_c, by_d = per_group(j, cls, direction)
        metrics["by_guidance"][str(w)] = dict(guidance=w, nfe_per_clip=args.steps * (1 if w == 1 else 2),
                                              sampling_seconds=round(secs, 1), **summary(j),
                                              class_accuracy_per_class=by_c, direction_accuracy_per_direction=by_d)
        print(w, json.dumps(metrics["by_guidance"][str(w)]), flush=True)
        idx = torch.arange(0, x.shape[0], args.per_prompt)[:40:4]  # one clip of each class (first direction)
        frames = x[idx].reshape(-1, 1, D.H, D.W)
        common.write_png(os.path.join(ROOT, "checkpoints", "video", f"eval_grid_g{w:g}.png"), common.grid(frames, D.T))
    head = metrics["by_guidance"].get("1.0") or next(iter(metrics["by_guidance"].values()))
    metrics["class_accuracy"] = head["class_accuracy"]
    metrics["direction_accuracy"] = head["direction_accuracy"]
    metrics["frame_agreement"] = head["frame_agreement"]
    metrics["headline"] = f"class_accuracy / direction_accuracy: Euler {args.steps} steps, guidance {head['guidance']}"
    card["metrics"] = metrics
    common.save_scripted(model, args.model + ".tmp", card)
    os.replace(args.model + ".tmp", args.model)  # atomic: a CLI run may be loading the model meanwhile
    print(json.dumps({k: v for k, v in metrics.items() if k != "by_guidance"}, indent=1))


if __name__ == "__main__":
    main()

"""Train and export the video verifiers (models/video-*.pt) and eval models (eval/video-*-eval.pt).

  /usr/bin/python3 scripts/train/video/train_classifiers.py --which verifier --minutes 4 --seed 10
  /usr/bin/python3 scripts/train/video/train_classifiers.py --which eval-class --minutes 3 --seed 20
  /usr/bin/python3 scripts/train/video/train_classifiers.py --which eval-direction --minutes 3 --seed 30

verifier: the frame classifier (FrameNet) on single frames of TRAIN-split clips; exported inside
models/video-class.pt and models/video-consistency.pt, beside the weightless models/video-motion.pt.
eval-*: other architectures and seeds, trained on clips of TEST-split garments only. Each card gets the
model's accuracy on fresh clips of the other split (2,000 for the verifiers, 500 for eval models; real data), and
the verifiers' ranking check:
how often a real clip scores higher with its own prompt than with a wrong-direction / wrong-class prompt.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.join(HERE, "..", "t2i"))
import data as D  # noqa: E402
import fmnist  # noqa: E402
from nets import EvalDirectionNet, EvalFrameNet, FrameNet  # noqa: E402
from verifiers import (ClipClassEval, DirectionEval, VideoClassVerifier,  # noqa: E402
                       VideoConsistencyVerifier, VideoMotionVerifier)

import common  # noqa: E402  (t2i's; it puts scripts/train/t2i first on sys.path, so it comes after nets)

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def command_line():
    return "/usr/bin/python3 " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def batch(which, gs, ys, n, gen):
    x, c, d = D.sample_clips(gs, ys, n, gen)
    x = (x + torch.rand(n, 1, 1, 1, 1, generator=gen) * 0.1 * torch.randn(x.shape, generator=gen)).clamp(-1, 1)
    if which == "eval-direction":
        return x, d
    t = torch.randint(0, D.T, (n,), generator=gen)
    return x[torch.arange(n), t], c


def fit(which, net, split, minutes, seed, bs):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    gs, ys = D.garments(split)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    t0, step, run, curve = time.time(), 0, 0.0, []
    while time.time() - t0 < minutes * 60:
        frac = (time.time() - t0) / (minutes * 60)
        for g in opt.param_groups:
            g["lr"] = 2e-3 * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * frac))
        x, y = batch(which, gs, ys, bs, gen)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        run = 0.95 * run + 0.05 * float(loss) if step > 1 else float(loss)
        if step % 50 == 0:
            curve.append([step, round((time.time() - t0) / 60, 2), round(run, 4)])
            print(which, curve[-1], flush=True)
    net.eval()
    return dict(training_steps=step, batch_size=bs, training_time_minutes=round((time.time() - t0) / 60, 2),
                loss_curve_every_50_steps=curve[-6:])


def other_split_clips(split, n=500, seed=1234):
    gs, ys = D.garments("test" if split == "train" else "train")
    return D.sample_clips(gs, ys, n, torch.Generator().manual_seed(seed))


def text_for(c, d):
    return D.one_hot_text(torch.tensor([D.tokenize(D.prompt_of(int(a), int(b))) for a, b in zip(c, d)]))


@torch.no_grad()
def verifier_checks(cls_v, mot_v, con_v, x, c, d):
    wrong_d = (d + 1 + torch.randint(0, 3, d.shape, generator=torch.Generator().manual_seed(5))) % 4
    wrong_c = (c + 1 + torch.randint(0, 9, c.shape, generator=torch.Generator().manual_seed(6))) % 10
    right = text_for(c, d)
    acc_c = float((cls_v.logits(x).argmax(1) == c).float().mean())
    acc_d = float((mot_v.direction_scores(x).argmax(1) == d).float().mean())
    motion_rank = float((mot_v(x, *right) > mot_v(x, *text_for(c, wrong_d))).float().mean())
    class_rank = float((cls_v(x, *right) > cls_v(x, *text_for(wrong_c, d))).float().mean())
    # consistency: a real clip against the same clip with its second half swapped for another garment
    swapped = x.clone()
    swapped[:, D.T // 2:] = x.roll(1, 0)[:, D.T // 2:]
    cons_rank = float((con_v(x, *right) > con_v(swapped, *right)).float().mean())
    return dict(clip_class_accuracy=round(acc_c, 4), direction_accuracy=round(acc_d, 4),
                class_rank_right_over_wrong_class=round(class_rank, 4),
                motion_rank_right_over_wrong_direction=round(motion_rank, 4),
                consistency_rank_real_over_half_swapped=round(cons_rank, 4))


def verifier_card(name, desc, methods, prov, metrics):
    return {"name": name, "kind": "verifier", "description": desc, "inputs": ["x0", "text", "text_mask"],
            "input": "x0 [N,8,1,32,32] float32 in [-1,1]; text [N,8,V], text_mask [N,8] from fashion-video-text",
            "text_encoder": "fashion-video-text", "sample_shape": [D.T, 1, D.H, D.W], "value_range": [-1.0, 1.0],
            "classes": D.CLASS_NAMES, "directions": D.DIRECTIONS, "methods": methods, "license": fmnist.LICENSE,
            "provenance": prov, "metrics": metrics}


def export_verifiers(net, prov):
    cm, dm = D.word_maps()
    cls_v = torch.jit.script(VideoClassVerifier(net, cm))
    mot_v = torch.jit.script(VideoMotionVerifier(dm))
    con_v = torch.jit.script(VideoConsistencyVerifier(net))
    x, c, d = other_split_clips("train", 2000)
    m = dict(measured_on="2,000 fresh clips of TEST-split garments (seed 1234)",
             **verifier_checks(cls_v, mot_v, con_v, x, c, d))
    print(json.dumps(m), flush=True)
    common.save_scripted(cls_v, os.path.join(ROOT, "models", "video-class.pt"), verifier_card(
        "video-class", "Per-frame class score: mean over the 8 frames of log p(prompt class | frame) from a frame CNN.",
        {"forward": "forward(x0, text, text_mask) -> [N] mean log p of the prompt's class (uniform mix if none)",
         "logits": "logits(x0) -> [N,10] mean frame log-probabilities", "features": "features(x0) -> [N,128]"},
        prov, m))
    common.save_scripted(mot_v, os.path.join(ROOT, "models", "video-motion.pt"), verifier_card(
        "video-motion", "Motion verifier (no weights): the centroid velocity of (p - 0.1)+ (p = (x+1)/2) from the "
        "first to the last frame, along the prompt's direction (capped at 16/7 px/frame, the data's top speed) minus "
        "the speed across it, px/frame.",
        {"forward": "forward(x0, text, text_mask) -> [N] px/frame", "velocity": "velocity(x0) -> [N,2] (rows, cols)",
         "direction_scores": "direction_scores(x0) -> [N,4] left, right, up, down"},
        dict(command=prov["command"], weights="none"), m))
    common.save_scripted(con_v, os.path.join(ROOT, "models", "video-consistency.pt"), verifier_card(
        "video-consistency", "Temporal consistency: mean cosine of consecutive frames' features (the video-class frame "
        "CNN) minus the mean relative change of the object's mass; ignores the prompt.",
        {"forward": "forward(x0, text, text_mask) -> [N]", "parts": "parts(x0) -> (cosine [N], mass change [N])"},
        prov, m))


@torch.no_grad()
def eval_checks(which, scripted, split):
    x, c, d = other_split_clips(split)
    y = d if which == "eval-direction" else c
    acc = float((scripted.logits(x).argmax(1) == y).float().mean())
    return dict(measured_on="500 fresh clips of TRAIN-split garments (seed 1234)", accuracy=round(acc, 4))


def eval_methods(which):
    k, what = ("10", "class") if which == "eval-class" else ("4", "direction (left, right, up, down)")
    m = {"forward": f"forward(x [N,8,1,32,32], cond int64 [N]) -> [N] log-prob of {what} cond",
         "logits": f"logits(x) -> [N,{k}] log-probs"}
    if which == "eval-class":
        m["frame_logits"] = "frame_logits(x) -> [N,8,10]"
    return m


def rewrap():
    """The first eval files had forward(x) -> logits; give them the eval contract without retraining."""
    for name, which in (("video-class-eval", "eval-class"), ("video-direction-eval", "eval-direction")):
        path = os.path.join(ROOT, "eval", name + ".pt")
        old, card = common.read_card(path)
        if hasattr(old, "logits"):
            continue
        new = torch.jit.script(ClipClassEval(old.net) if which == "eval-class" else DirectionEval(old))
        card["methods"] = eval_methods(which)
        card["provenance"]["rewrapped"] = "/usr/bin/python3 scripts/train/video/train_classifiers.py --rewrap"
        common.save_scripted(new, path, card)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", choices=["verifier", "eval-class", "eval-direction"])
    ap.add_argument("--rewrap", action="store_true", help="give old eval files forward(x, cond) (see rewrap)")
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if args.rewrap:
        return rewrap()
    torch.set_num_threads(args.threads)
    split = "train" if args.which == "verifier" else "test"
    net = {"verifier": lambda: FrameNet(32), "eval-class": lambda: EvalFrameNet(24),
           "eval-direction": lambda: EvalDirectionNet(D.T, 32)}[args.which]()
    prov = dict(training_data="moving Fashion-MNIST clips (scripts/train/video/data.py) of "
                f"{split.upper()}-split garments, "
                "pixel noise of std U(0, 0.1)", command=command_line(), seed=args.seed,
                param_count=fmnist.count_params(net), hardware="CPU (2-core AMD EPYC, shared), 1 thread",
                optimizer="AdamW lr 0.002, warmup 50, cosine over the time budget", **fmnist.torch_info())
    prov.update(fit(args.which, net, split, args.minutes, args.seed, args.batch))
    if args.which == "verifier":
        return export_verifiers(net, prov)
    scripted = torch.jit.script(ClipClassEval(net) if args.which == "eval-class" else DirectionEval(net))
    name = "video-class-eval" if args.which == "eval-class" else "video-direction-eval"
    card = {"name": name, "kind": "eval", "sample_shape": [D.T, 1, D.H, D.W], "value_range": [-1.0, 1.0],
            "description": "Eval model (never a verifier): " + (
                "clip class log-probs = mean over frames of a strided-conv frame classifier's log-softmax"
                if args.which == "eval-class"
                else "direction logits (left, right, up, down) from a CNN over the 8 frames "
                "as channels"),
            "methods": eval_methods(args.which),
            "classes": D.CLASS_NAMES, "directions": D.DIRECTIONS, "license": fmnist.LICENSE, "provenance": prov,
            "metrics": eval_checks(args.which, scripted, split)}
    print(json.dumps(card["metrics"]), flush=True)
    common.save_scripted(scripted, os.path.join(ROOT, "eval", name + ".pt"), card)


if __name__ == "__main__":
    main()

"""Issue 25's results: plain sampling, best-of-N and EvoSearch on held-out video prompts, through the CLI,
judged by the eval models (never the verifiers the searches used).

  /usr/bin/python3 scripts/train/video/results.py --prompts 50 --budget 500 [--skip-run]

Prompts: every "a {class} moving {direction}" (40) and then pairs drawn at random (seed 7), shuffled, cut to
--prompts; one clip each, the same --seed for every method. Each method is one `diffusion-search generate
--prompts FILE` call (model fashion-video, its default verifiers video-class + video-motion as a rank ensemble,
Euler 20 steps, guidance 1). Writes docs/video/results.json, docs/video/table.md, and copies the CLI's animations
of the first four prompts (plain and EvoSearch) to docs/video/.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
from evaluate import judge, load_evals, summary  # noqa: E402

import common  # noqa: E402  (scripts/train/t2i, put on sys.path by evaluate)

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
METHODS = [("plain", "baseline", None), ("best-of-N", "best-of-n", "budget"), ("EvoSearch", "evosearch", "budget")]


def prompt_pairs(n):
    pairs = [(c, d) for c in range(10) for d in range(4)]
    rng = random.Random(7)
    while len(pairs) < n:
        pairs.append((rng.randrange(10), rng.randrange(4)))
    rng.shuffle(pairs)
    return pairs[:n]


def cli_args(args, algorithm, budget, prompts_file, out):
    return ["generate", "--model", "fashion-video", "--prompts", os.path.relpath(prompts_file, ROOT), "--algorithm",
            algorithm, "--budget", str(budget), "--seed", str(args.seed), "--steps", "20", "--out",
            os.path.relpath(out, ROOT)]


def run_cli(argv):
    subprocess.run(["node", os.path.join(ROOT, "lib", "cli", "index.js")] + argv, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=os.path.join(ROOT, "checkpoints", "video", "results"))
    ap.add_argument("--skip-run", action="store_true", help="judge the outputs of an earlier run")
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "video"), help="where results.json, table.md go")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pairs = prompt_pairs(args.prompts)
    os.makedirs(args.work, exist_ok=True)
    prompts_file = os.path.join(args.work, "prompts.txt")
    with open(prompts_file, "w") as f:
        f.write("\n".join(D.prompt_of(c, d) for c, d in pairs) + "\n")
    cls = torch.tensor([c for c, _ in pairs])
    direction = torch.tensor([d for _, d in pairs])
    evals = load_evals()
    rows = []
    for label, algorithm, budget in METHODS:
        out = os.path.join(args.work, algorithm)
        b = args.budget if budget else 20
        argv = cli_args(args, algorithm, b, prompts_file, out)
        if not args.skip_run:
            run_cli(argv)
        rep = json.load(open(os.path.join(out, "report.json")))
        x = torch.from_numpy(np.load(os.path.join(out, "samples.npy"))).float()
        s = summary(judge(x, cls, direction, evals))
        rows.append(dict(method=label, algorithm=algorithm, budget_per_clip=b, clips=int(x.shape[0]),
                         nfe_per_clip=rep["nfe_used"] / x.shape[0], wall_seconds=rep["wall_seconds"],
                         seconds_per_clip=round(rep["wall_seconds"] / x.shape[0], 2),
                         mean_verifier_reward=round(float(np.mean(rep["rewards"])), 4), verifier=rep["verifier"],
                         command=" ".join(["diffusion-search"] + argv), **s))
        print(json.dumps(rows[-1]), flush=True)
    docs = args.docs
    os.makedirs(docs, exist_ok=True)
    for r in rows:
        if r["algorithm"] not in ("baseline", "evosearch"):
            continue
        r["figures"] = []
        for i in range(4):  # the first four prompts, as they come: the animations the CLI wrote
            name = f"{r['algorithm']}-{i}-{D.prompt_of(*pairs[i]).replace(' ', '-').replace('/', '-')}.gif"
            shutil.copyfile(os.path.join(args.work, r["algorithm"], f"clip-{i}.gif"), os.path.join(docs, name))
            r["figures"].append(os.path.relpath(os.path.join(docs, name), ROOT))
    # A still of the same four clips: plain (rows 1-4) above EvoSearch (rows 5-8), frames left to right.
    still = [np.load(os.path.join(args.work, a, "samples.npy"))[:4] for a in ("baseline", "evosearch")]
    frames = torch.from_numpy(np.concatenate(still)).reshape(-1, 1, D.H, D.W)
    common.write_png(os.path.join(docs, "plain-vs-evosearch.png"), common.grid(frames, D.T, scale=2))
    result = dict(prompts=[D.prompt_of(c, d) for c, d in pairs], seed=args.seed, model="fashion-video",
                  judged_by=["eval/video-class-eval.pt", "eval/video-direction-eval.pt"],
                  machine="2-core AMD EPYC, shared with other jobs, CPU", rows=rows)
    with open(os.path.join(docs, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = ["| method | NFE per clip | class acc | direction acc | both | frame agreement | s per clip |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['nfe_per_clip']:.0f} | {r['class_accuracy']:.2f} | "
                     f"{r['direction_accuracy']:.2f} | "
                     f"{r['both_accuracy']:.2f} | {r['frame_agreement']:.3f} | {r['seconds_per_clip']:.2f} |")
    with open(os.path.join(docs, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

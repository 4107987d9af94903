#!/usr/bin/env python3
"""Baseline for `diffusion-search bench model --e2e`: best-of-N written as a plain PyTorch loop.

The same work as `diffusion-search generate --algorithm best-of-n --budget B --n N --steps S
--class C --no-eval`: for each of N samples, B/S trajectories from Gaussian noise at sigma = 1,
S Euler steps of the rectified-flow velocity model (x = (1-sigma) x0 + sigma eps, v = eps - x0)
on the uniform schedule, scored by the log-softmax of class C from the classifier's logits; keep
the best. Prints one JSON object with the wall time per repeat, from loading the two modules to the
last score: cold, as one `generate` call is (loading is a few ms; TorchScript's profiling
executor optimises over the first forwards, in both runtimes alike).
"""
import argparse
import json
import time

import torch


def search(flow, clf, cls, trajectories, steps, gen):
    x = torch.randn((trajectories, 1, 28, 28), generator=gen)
    c = torch.full((trajectories,), cls, dtype=torch.int64)
    for i in range(steps):
        s_from, s_to = 1 - i / steps, 1 - (i + 1) / steps
        v = flow(x, torch.full((trajectories,), s_from), c)
        x = x + (s_to - s_from) * v
    reward = torch.log_softmax(clf.logits(x), dim=1)[:, cls]
    best = int(reward.argmax())
    return x[best], float(reward[best])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--classifier", required=True)
    p.add_argument("--cls", type=int, default=6)
    p.add_argument("--budget", type=int, default=500)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    trajectories = a.budget // a.steps
    gen = torch.Generator().manual_seed(1)
    seconds, rewards = [], []
    with torch.inference_mode():
        for _ in range(a.repeats):
            t = time.perf_counter()
            flow = torch.jit.load(a.model, map_location="cpu").eval()
            clf = torch.jit.load(a.classifier, map_location="cpu").eval()
            rewards = [search(flow, clf, a.cls, trajectories, a.steps, gen)[1] for _ in range(a.n)]
            seconds.append(time.perf_counter() - t)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "seconds": seconds,
                      "nfe": a.n * trajectories * a.steps, "rewards": rewards}))


if __name__ == "__main__":
    main()

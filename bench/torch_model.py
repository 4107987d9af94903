#!/usr/bin/env python3
"""Baseline for `diffusion-search bench model`: PyTorch's own forward of a TorchScript denoiser.

Times forward(x [B,1,28,28], sigma [B], class int64 [B]) under inference_mode with the given
thread count and prints one JSON object: {"torch": version, "threads": n, "rows": [{batch,
ms: [per repeat]}]}. The Node side spawns this with the same batch sizes, threads and repeats.
"""
import argparse
import json
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batches", default="1,16,50,256")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--shape", default="1,28,28", help="sample shape after the batch dimension")
    p.add_argument("--classes", type=int, default=10)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = torch.jit.load(a.model, map_location="cpu").eval()
    shape = [int(s) for s in a.shape.split(",")]
    rows = []
    with torch.inference_mode():
        for b in [int(s) for s in a.batches.split(",")]:
            x = torch.randn([b] + shape)
            sigma = torch.rand(b)
            cls = torch.randint(0, a.classes, (b,), dtype=torch.int64)
            # The profiling executor optimises the graph over the first runs of each shape.
            for _ in range(a.warmup):
                m(x, sigma, cls)
            ms = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                m(x, sigma, cls)
                ms.append((time.perf_counter() - t) * 1e3)
            rows.append({"batch": b, "ms": ms})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}))


if __name__ == "__main__":
    main()

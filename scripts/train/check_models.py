"""Load every shipped TorchScript file, check its card and forward shapes.

  /usr/bin/python3 scripts/train/check_models.py
"""
import json
import os
import sys

import torch

FILES = [
    "models/fashion-flow.pt",
    "models/fashion-flow-small.pt",
    "models/fashion-classifier.pt",
    "models/fashion-realism.pt",
    "eval/fashion-eval.pt",
    "models/gmm2d.pt",
    "models/gmm2d-reward.pt",
    "models/vp2d.pt",
]
REQUIRED = [
    "name",
    "kind",
    "prediction",
    "path",
    "sample_shape",
    "classes",
    "null_class",
    "value_range",
    "license",
    "provenance",
]


def main():
    torch.set_num_threads(1)
    ok = True
    total = 0
    for f in FILES:
        if not os.path.exists(f):
            print(f"MISSING {f}")
            ok = False
            continue
        total += os.path.getsize(f) if f.startswith("models/") else 0
        extra = {"model.json": ""}
        m = torch.jit.load(f, _extra_files=extra)
        card = json.loads(extra["model.json"])
        miss = [k for k in REQUIRED if k not in card]
        shape = card["sample_shape"]
        n = 3
        x = torch.randn([n] + shape)
        c = torch.tensor([0, 1, 10 if card["classes"] else 0])
        with torch.no_grad():
            if card["kind"] == "denoiser":
                y = m(x, torch.rand(n), c)
                assert tuple(y.shape) == tuple(x.shape), (f, y.shape)
                if hasattr(m, "forward_features"):
                    v, feat = m.forward_features(x, torch.rand(n), c)
                    assert feat.shape[0] == n and feat.dim() == 2
            else:
                c = c.clamp(max=9)
                y = m(x, c)
                assert tuple(y.shape) == (n,), (f, y.shape)
                if hasattr(m, "features"):
                    assert m.features(x).shape[0] == n
                if hasattr(m, "logits"):
                    assert tuple(m.logits(x).shape) == (n, 10)
                if hasattr(m, "fid_stats"):
                    mu, cov, muc, covc = m.fid_stats()
                    assert muc.shape[0] == 10 and covc.shape[0] == 10 and float(cov.abs().sum()) > 0
        print(
            f"{'OK ' if not miss else 'BAD'} {f} {os.path.getsize(f)/1e6:.2f} MB kind={card['kind']} "
            f"params={card['provenance'].get('param_count')} missing={miss} "
            f"metrics={list(card.get('metrics', {}).keys())}"
        )
        ok &= not miss
    print(f"models/ total {total/1e6:.2f} MB")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Multiply-accumulates per sample of the fashion-flow U-Nets (per NFE) and of the classifier verifier.

  /usr/bin/python3 scripts/science/flops.py

Counts Conv2d and Linear MACs with forward hooks on one 28x28 input (GroupNorm, activations and
upsampling are left out: under 2 % here). Prints JSON.
"""
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from classifier_nets import VerifierNet  # noqa: E402
from flow_net import FlowUNet  # noqa: E402


def macs(model, *inputs):
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            total[0] += out.numel() * k
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(*inputs)
    for h in hs:
        h.remove()
    return total[0]


def main():
    x = torch.zeros(1, 1, 28, 28)
    s, c = torch.full((1,), 0.5), torch.zeros(1, dtype=torch.long)
    out = {}
    for name, ch in [("fashion-flow", (32, 64, 128)), ("fashion-flow-small", (16, 32, 64))]:
        m = FlowUNet(ch, 128, 11)
        params = sum(p.numel() for p in m.parameters())
        out[name] = {"channels": list(ch), "params": params, "macs_per_nfe": macs(m, x, s, c)}
    v = VerifierNet()
    out["classifier"] = {"params": sum(p.numel() for p in v.parameters()), "macs_per_score": macs(v, x, c)}
    out["ratio_small_to_large"] = out["fashion-flow-small"]["macs_per_nfe"] / out["fashion-flow"]["macs_per_nfe"]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

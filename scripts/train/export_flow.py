"""Export the EMA weights of a flow checkpoint to TorchScript with its model card.

  /usr/bin/python3 scripts/train/export_flow.py --ckpt checkpoints/flow.ckpt --out models/fashion-flow.pt
Keeps the "metrics" of an existing card at --out unless --drop-metrics.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from flow_net import FlowUNet  # noqa: E402


def export(ckpt_path, out, keep_metrics=True, note=""):
    ck = torch.load(ckpt_path)
    arch = ck["arch"]
    m = FlowUNet(tuple(arch["ch"]), arch["edim"], arch["num_classes"])
    m.load_state_dict(ck["ema"])
    m.eval()
    sm = torch.jit.script(m)
    card = fmnist.base_card(os.path.splitext(os.path.basename(out))[0], "denoiser")
    card.update(
        {
            "description": "Class-conditional rectified-flow U-Net (velocity prediction) for Fashion-MNIST. "
            "forward(x[N,1,28,28], sigma[N], cond[N] int64) -> v = eps - x0; "
            "Euler step x += (sigma_to - sigma_from) * v. "
            "cond = 10 is the null class (classifier-free guidance: v = v_null + w (v_cond - v_null)).",
            "conditioning": {
                "type": "class",
                "num_classes": 10,
                "null_class": fmnist.NULL_CLASS,
                "label_dropout": ck["args"]["p_uncond"],
            },
            "sigma_range": [0.0, 1.0],
            "methods": {
                "forward": "forward(x, sigma, cond) -> velocity [N,1,28,28]",
                "forward_features": "forward_features(x, sigma, cond) -> (velocity [N,1,28,28], features "
                f"[N,{m.feature_dim}]) "
                "(spatially mean-pooled U-Net bottleneck activations, 7x7)",
            },
            "feature_dim": m.feature_dim,
            "provenance": {
                "training_data": "Fashion-MNIST train split (60,000 images), /usr/share/datasets/fashion-mnist, "
                "scaled to [-1,1]",
                "command": ck["command"]
                + "   # resumable; exported from checkpoint EMA weights by scripts/train/export_flow.py",
                "seed": ck["args"]["seed"],
                "param_count": fmnist.count_params(m),
                "training_time_minutes": round(ck["elapsed"] / 60.0, 1),
                "training_steps": ck["step"],
                "batch_size": ck["args"]["batch"],
                "images_seen": ck["step"] * ck["args"]["batch"],
                "epochs": round(ck["step"] * ck["args"]["batch"] / 60000.0, 2),
                "optimizer": f"AdamW lr {ck['args']['lr']} cosine over the time budget to "
                f"{ck['args']['min_lr_frac']}x, warmup {ck['args']['warmup']} steps, grad clip 1.0",
                "ema": f"EMA decay min({ck['args']['ema']}, (1+step)/(10+step)); exported weights are the EMA",
                "sigma_sampling": "logit-normal(0,1), 10% uniform",
                "hardware": "CPU, 2 cores",
                "architecture": f"U-Net channels {list(arch['ch'])} at 28/14/7, 6 residual blocks with (sigma, class) "
                "scale-shift, nearest upsampling",
                "loss_curve_every_100_steps": ck.get("curve", [])[-5:],
                **fmnist.torch_info(),
            },
        }
    )
    if note:
        card["provenance"]["note"] = note
    if keep_metrics and os.path.exists(out):
        extra = {"model.json": ""}
        torch.jit.load(out, _extra_files=extra)
        old = json.loads(extra["model.json"] or "{}")
        if "metrics" in old:
            card["metrics"] = old["metrics"]
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    torch.jit.save(sm, out, _extra_files={"model.json": json.dumps(card, indent=1)})
    print(f"exported {out} ({os.path.getsize(out)/1e6:.2f} MB), params {card['provenance']['param_count']}")
    return card


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="checkpoints/flow.ckpt")
    ap.add_argument("--out", default="models/fashion-flow.pt")
    ap.add_argument("--drop-metrics", action="store_true")
    ap.add_argument("--note", default="", help="free-text provenance note (e.g. the history of resumed runs)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    export(a.ckpt, a.out, keep_metrics=not a.drop_metrics, note=a.note)

"""Wrap any PyTorch denoiser (or verifier) into the diffusion-search TorchScript contract and
write its model card. A worked, general example used by docs/bring-your-own-model.md.

Denoiser contract:  forward(x: Tensor[N,...] float32, sigma: Tensor[N] float32, cond: Tensor[N] int64) -> Tensor[N,...]
Verifier contract:  forward(x0: Tensor[N,...], cond: Tensor[N] int64) -> Tensor[N]  (higher is better),
                    optional features(x0) -> Tensor[N,D]
Card: JSON stored in the archive as extra file "model.json".

Run the worked example (a toy "user" model with its own calling convention, wrapped and exported):
  /usr/bin/python3 scripts/train/export_torchscript.py --demo --out /tmp/my-denoiser.pt
Wrap the project's own flow checkpoint (re-export, same as scripts/train/export_flow.py but via the wrapper):
  /usr/bin/python3 scripts/train/export_torchscript.py --flow-ckpt checkpoints/flow.ckpt \
      --out /tmp/fashion-flow-wrapped.pt
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Optional

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REQUIRED_DENOISER = [
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
PREDICTIONS = ("velocity", "epsilon", "x0")
PATHS = ("rectified_flow", "vp")


class DenoiserWrapper(nn.Module):
    """Adapts a model called as  model(x, t, labels)  to  forward(x, sigma, cond).

    time_scale / time_offset: the model's own time input is t = time_offset + time_scale * sigma
        (e.g. 999 for models trained on integer timesteps 0..999 with sigma = t/999).
    label_offset: added to cond before the call (e.g. models whose null label is -1 -> use the card's null_class).
    out_scale: multiplies the output (e.g. -1 when the model predicts x0 - eps instead of eps - x0).
    """

    def __init__(
        self,
        model: nn.Module,
        time_scale: float = 1.0,
        time_offset: float = 0.0,
        label_offset: int = 0,
        out_scale: float = 1.0,
    ):
        super().__init__()
        self.model = model
        self.time_scale = time_scale
        self.time_offset = time_offset
        self.label_offset = label_offset
        self.out_scale = out_scale

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        t = self.time_offset + self.time_scale * sigma.to(x.dtype)
        return self.out_scale * self.model(x, t, cond.long() + self.label_offset)


def validate_card(card: Dict) -> None:
    missing = [k for k in REQUIRED_DENOISER if k not in card]
    if missing:
        raise ValueError(f"model card misses {missing}")
    if card["kind"] == "denoiser":
        if card["prediction"] not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}")
        if card["path"] not in PATHS:
            raise ValueError(f"path must be one of {PATHS}")
    if card["classes"] and not (isinstance(card["null_class"], int) or card["null_class"] is None):
        raise ValueError("null_class must be an int index (or null when there is no classifier-free guidance)")
    for k in ("command", "training_data"):
        if k not in card["provenance"]:
            raise ValueError(f"provenance.{k} missing")


def export_denoiser(
    module: nn.Module,
    out: str,
    card: Dict,
    example_batch: int = 2,
    method: str = "script",
    extra_methods: Optional[List[str]] = None,
) -> torch.jit.ScriptModule:
    """Script (or trace) `module`, check the contract on random inputs, save with the card."""
    validate_card(card)
    module = module.eval()
    shape = [example_batch] + list(card["sample_shape"])
    x = torch.randn(shape)
    sigma = torch.rand(example_batch)
    n_cond = len(card["classes"]) or 1
    cond = torch.randint(0, n_cond, (example_batch,))
    if method == "script":
        sm = torch.jit.script(module)
    else:  # tracing freezes Python control flow: only for models without data-dependent branches
        sm = torch.jit.trace_module(module, {"forward": (x, sigma, cond)})
    with torch.no_grad():
        y = sm(x, sigma, cond)
        ref = module(x, sigma, cond)
    assert tuple(y.shape) == tuple(shape), f"forward returned {tuple(y.shape)}, expected {tuple(shape)}"
    assert y.dtype == torch.float32
    assert torch.allclose(y, ref, atol=1e-5, rtol=1e-4), "scripted output differs from eager"
    for name in extra_methods or []:
        assert hasattr(sm, name), f"exported method {name} missing (decorate it with @torch.jit.export)"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    torch.jit.save(sm, out, _extra_files={"model.json": json.dumps(card, indent=1)})
    # round trip: the archive loads and the card comes back
    extra = {"model.json": ""}
    torch.jit.load(out, _extra_files=extra)
    assert json.loads(extra["model.json"])["name"] == card["name"]
    print(f"wrote {out} ({os.path.getsize(out)/1e6:.2f} MB)")
    return sm


# ---------------------------------------------------------------- worked example
class UserEpsModel(nn.Module):
    """Stands in for 'any PyTorch denoiser': called as model(x, t, labels) with integer-style timesteps
    t in [0, 999], predicts epsilon, uses label -1 for 'unconditional'."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 16)
        self.net = nn.Sequential(nn.Conv2d(1 + 16 + 1, 32, 3, padding=1), nn.SiLU(), nn.Conv2d(32, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.emb(labels + 1).view(-1, 16, 1, 1).expand(-1, 16, x.shape[2], x.shape[3])
        tt = (t / 1000.0).view(-1, 1, 1, 1).expand(-1, 1, x.shape[2], x.shape[3])
        return self.net(torch.cat([x, e, tt], dim=1))


def demo(out: str) -> None:
    torch.manual_seed(0)
    user_model = UserEpsModel()  # in practice: load your trained weights here

    # The user's model: sigma = t/999 on the rectified-flow path, epsilon prediction, null label -1.
    # diffusion-search sends cond in 0..9 plus null_class = 10; classes 0..9 stay as they are and only
    # the null class is remapped, in a tiny adapter (any TorchScript-able code can go here):
    class NullMap(nn.Module):
        def __init__(self, m: nn.Module):
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            labels = torch.where(labels == 10, torch.full_like(labels, -1), labels)
            return self.m(x, t, labels)

    wrapped = DenoiserWrapper(NullMap(user_model), time_scale=999.0)
    from fmnist import CLASSES, LICENSE

    card = {
        "name": "my-denoiser",
        "kind": "denoiser",
        "prediction": "epsilon",
        "path": "rectified_flow",
        "sample_shape": [1, 28, 28],
        "classes": CLASSES,
        "null_class": 10,
        "value_range": [-1.0, 1.0],
        "license": LICENSE,
        "provenance": {
            "training_data": "untrained demo weights",
            "command": "/usr/bin/python3 " + " ".join(sys.argv),
            "seed": 0,
            "param_count": int(sum(p.numel() for p in user_model.parameters())),
            "torch_version": torch.__version__,
        },
    }
    export_denoiser(wrapped, out, card)


def wrap_flow_ckpt(ckpt: str, out: str) -> None:
    from export_flow import export

    export(ckpt, out, keep_metrics=False)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--flow-ckpt", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.demo:
        demo(a.out)
    elif a.flow_ckpt:
        wrap_flow_ckpt(a.flow_ckpt, a.out)
    else:
        ap.error("--demo or --flow-ckpt")

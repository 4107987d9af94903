"""Fashion-MNIST IDX loader and shared helpers (seeding, class names, model-card basics).

Reads Debian's dataset-fashion-mnist IDX files (gzip) from /usr/share/datasets/fashion-mnist.
Images are returned as float32 tensors [N,1,28,28] scaled to [-1, 1]; labels as int64 [N].
"""
import gzip
import os
import random
import struct

import numpy as np
import torch

DATA_DIR = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
NULL_CLASS = 10
LICENSE = (
    "Weights: MIT (this project). Training data: Fashion-MNIST (Zalando Research), MIT license, "
    "via Debian package dataset-fashion-mnist."
)


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dtype_code = (magic >> 8) & 0xFF
    assert dtype_code == 0x08, f"unsupported IDX dtype {dtype_code:#x} in {path}"
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load(split="train", data_dir=DATA_DIR):
    """split: 'train' (60k) or 'test' (10k). Returns (images [N,1,28,28] in [-1,1], labels int64 [N])."""
    prefix = {"train": "train", "test": "t10k"}[split]
    imgs = _read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(imgs.astype(np.float32)).div_(127.5).sub_(1.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def torch_info():
    return {"torch_version": torch.__version__}


def count_params(m):
    return int(sum(p.numel() for p in m.parameters()))


def base_card(name, kind, sample_shape=(1, 28, 28)):
    return {
        "name": name,
        "kind": kind,
        "prediction": "velocity",
        "path": "rectified_flow",
        "sample_shape": list(sample_shape),
        "classes": CLASSES,
        "null_class": NULL_CLASS,
        "value_range": [-1.0, 1.0],
        "license": LICENSE,
    }


if __name__ == "__main__":
    for s in ("train", "test"):
        x, y = load(s)
        print(s, tuple(x.shape), x.dtype, float(x.min()), float(x.max()), torch.bincount(y).tolist())

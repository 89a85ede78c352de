"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60000 + 10000 grayscale 28x28 images, 10 classes.

On Debian/Ubuntu the package `dataset-fashion-mnist` installs the four IDX `.gz` files in
/usr/share/datasets/fashion-mnist, the default location here.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from .._check import check_path
from .dataset import Dataset
from .idx import read_idx

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_HOW_TO_GET = (
    "Install it with `sudo apt-get install dataset-fashion-mnist` (files go to "
    f"{DEFAULT_ROOT}), or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
    "https://github.com/zalandoresearch/fashion-mnist into a folder and pass root=<folder> "
    "(or set EDGEOPT_DATA=<folder>).")


def _candidates(root) -> list[str]:
    if root is not None:
        root = check_path("root", root)
        return [root, os.path.join(root, "fashion-mnist")]
    env = os.environ.get("EDGEOPT_DATA")
    if env:
        return [os.path.join(env, "fashion-mnist"), env]
    return [DEFAULT_ROOT]


def _find(folder: str, stem: str) -> Optional[str]:
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def _split(folder: str, split: str) -> Dataset:
    paths = []
    for stem in _FILES[split]:
        p = _find(folder, stem)
        if p is None:
            raise FileNotFoundError(f"Fashion-MNIST: {os.path.join(folder, stem + '.gz')} is missing. "
                                    + _HOW_TO_GET)
        paths.append(p)
    x = read_idx(paths[0], ndim=3)
    y = read_idx(paths[1], ndim=1)
    if x.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: expected 28x28 images, got {x.shape[1]}x{x.shape[2]}")
    if len(x) != len(y):
        raise ValueError(f"{paths[0]}, {paths[1]}: mismatched counts: {len(x)} images but "
                         f"{len(y)} labels")
    if y.size and y.max() >= len(CLASSES):
        raise ValueError(f"{paths[1]}: label {int(y.max())} (at index {int(np.argmax(y))}) is out of "
                         f"range for {len(CLASSES)} classes")
    return Dataset(x.reshape(len(x), 1, 28, 28), y, CLASSES, name=f"fashion-mnist/{split}")


def fashion_mnist(root=None) -> tuple[Dataset, Dataset]:
    """(train, test) Datasets: x uint8 (N, 1, 28, 28), y int64 (N,), 10 named classes.

    Looks in `root` (or root/fashion-mnist), else in $EDGEOPT_DATA/fashion-mnist (or
    $EDGEOPT_DATA), else in /usr/share/datasets/fashion-mnist. Reads the IDX files, `.gz` or not.
    """
    tried = _candidates(root)
    for folder in tried:
        if _find(folder, _FILES["train"][0]) is not None:
            return _split(folder, "train"), _split(folder, "test")
    raise FileNotFoundError(f"Fashion-MNIST not found: no train-images-idx3-ubyte.gz in "
                            f"{' or '.join(tried)}. " + _HOW_TO_GET)

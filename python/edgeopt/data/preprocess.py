"""Input preprocessing shared by training, evaluation and deployment: uint8 images are scaled to
[0, 1] and normalized per channel with the training set's mean and std, which `fit` records on
the model (`model.input_norm`) so every later consumer normalizes the same way."""
from __future__ import annotations

import numpy as np

from .loader import DataLoader


def channel_stats(data, max_samples: int = 10000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of a dataset's images scaled to [0, 1] (on a fixed subsample)."""
    x = data.x[: max_samples]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3))
    std = np.where(std > 1e-6, std, 1.0)
    return [float(m) for m in mean], [float(s) for s in std]


def input_norm(model, data):
    norm = getattr(model, "input_norm", None)
    if norm is not None:
        return list(norm["mean"]), list(norm["std"])
    c = data.x.shape[1]
    return [0.0] * c, [1.0] * c


def make_loader(data, batch_size, shuffle, seed, mean, std, augment=None, drop_last=False):
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed, mean=mean, std=std,
                      augment=augment, drop_last=drop_last)

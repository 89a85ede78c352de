"""`Dataset`: a pair of arrays (images, labels) with class names.

Images are kept in whatever dtype they came in (uint8 for the real datasets, so 60000 Fashion-MNIST
images take 47 MB, not 188 MB as float32); the DataLoader converts batch by batch.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np

from .. import _core
from .._check import show_value


class Dataset:
    """Images `x` (N, ...) and integer class labels `y` (N,), stored as int64.

    `x` is typically uint8 (N, C, H, W) (pixels in [0, 255]) or float32 (N, C, H, W). `classes`
    (optional) names the classes; when given, every label must be in [0, len(classes)).
    """

    def __init__(self, x, y, classes: Optional[Sequence[str]] = None, name: str = ""):
        x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"x: expected an array of samples (N, ...), got a scalar of shape {x.shape}")
        if x.dtype == object or x.dtype.kind not in "biuf":
            raise TypeError(f"x: expected a numeric array (uint8 or float images), got dtype {x.dtype}")
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
        if y.ndim != 1:
            raise ValueError(f"y: expected a 1-d array of labels, got shape {y.shape}")
        if len(x) != len(y):
            raise ValueError(f"x, y: expected the same number of samples, got {len(x)} images and "
                             f"{len(y)} labels")
        if y.dtype.kind == "u" and y.size and y.max() > np.iinfo(np.int64).max:
            raise ValueError(f"y: label {y.max()} does not fit in int64")
        y = y.astype(np.int64, copy=False)
        if y.size and y.min() < 0:
            raise ValueError(f"y: expected labels >= 0, got {y.min()} (at index {int(np.argmin(y))})")
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {show_value(name)} ({type(name).__name__})")
        if classes is not None:
            if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
                raise TypeError(f"classes: expected None or a sequence of class names, got {show_value(classes)} "
                                f"({type(classes).__name__})")
            classes = [str(c) for c in classes]
            if y.size and y.max() >= len(classes):
                raise ValueError(f"y: label {y.max()} (at index {int(np.argmax(y))}) is out of range "
                                 f"for {len(classes)} classes")
        self.x = x
        self.y = y
        self.classes = classes
        self.name = name

    @property
    def num_classes(self) -> int:
        """len(classes) when the classes are named, else max(y) + 1."""
        if self.classes is not None:
            return len(self.classes)
        return int(self.y.max()) + 1 if self.y.size else 0

    @property
    def shape(self) -> tuple:
        """Shape of one sample, e.g. (1, 28, 28)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        """(x[i], y[i]) for an int (label as a Python int), or the arrays for a slice/index array."""
        if isinstance(i, numbers.Integral) and not isinstance(i, bool):
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for a dataset of {n} samples")
            return self.x[i], int(self.y[i])
        return self.x[i], self.y[i]

    def subset(self, indices) -> "Dataset":
        """A new dataset with the samples at `indices` (integer array/sequence, a slice or a boolean
        mask of length N), copied, with the same class names."""
        if isinstance(indices, slice):
            return Dataset(self.x[indices].copy(), self.y[indices].copy(), self.classes, self.name)
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"indices: a boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu":
            raise TypeError(f"indices: expected integer indices or a boolean mask, got dtype {idx.dtype}")
        if idx.ndim != 1:
            raise ValueError(f"indices: expected a 1-d array, got shape {idx.shape}")
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"indices: index {bad} is out of range for a dataset of {n} samples")
        return Dataset(self.x[idx], self.y[idx], self.classes, self.name)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (mean, std) of the images over the whole dataset, channels on axis 1, with
        uint8 pixels scaled to [0, 1]: the numbers to pass as DataLoader(mean=..., std=...).
        Exact for uint8 storage (integer sums in C++)."""
        x = self.x
        if len(x) == 0:
            raise ValueError("stats: the dataset is empty")
        if x.ndim < 2:
            x = x.reshape(len(x), 1)
        if x.dtype not in (np.uint8, np.float32):
            x = x.astype(np.float32)
        mean, std = _core.data.data_channel_stats(np.ascontiguousarray(x))
        if x.dtype == np.uint8:
            mean, std = mean / 255.0, std / 255.0
        return mean, std

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return (f"Dataset({label}n={len(self)}, x={self.x.dtype}{tuple(self.x.shape)}, "
                f"classes={self.num_classes})")


def check_dataset(name: str, v) -> Dataset:
    """`v` is a Dataset (arrays must be wrapped: the error says how); for the public API's
    argument checks (edgeopt/_check.py holds the type-independent ones)."""
    if not isinstance(v, Dataset):
        raise TypeError(f"{name}: expected an edgeopt.data.Dataset, got {show_value(v)} ({type(v).__name__}); "
                        "wrap arrays with edgeopt.data.Dataset(x, y)")
    return v

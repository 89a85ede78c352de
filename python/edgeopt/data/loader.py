"""`DataLoader`: float32 batches from a Dataset, assembled in C++.

Each batch is one call into the core that gathers the batch's images from the dataset's storage
(uint8 stays uint8 in memory), converts to float32, normalizes per channel and applies the random
crop and flip, in parallel over images. Nothing proportional to the dataset is copied per epoch:
only the index permutation (8 bytes per sample) is.

Randomness is counter-based: the shuffle of an epoch is a function of (seed, epoch) and the crop
offsets / flip bit of an image are a function of (seed, epoch, dataset index). The same loader
settings therefore give the same batches on any machine and for any thread count, and an image's
augmentation does not depend on the batch size or on where the shuffle put it.

Prefetch (on by default): while the caller trains on batch b, one worker thread assembles batch
b + 1 (the core call releases the GIL, so the two overlap). It changes when a batch is made, never
what it holds: the batches are those of `batch(order[...], epoch)` in order, with or without it.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Optional

import numpy as np

from .. import _core
from .._check import check_bool, check_choice, check_int
from .dataset import check_dataset
from .dataset import Dataset

_DEFAULT_CROP_PADDING = 4  # the usual CIFAR recipe: pad 4, crop back to 32x32


_SEED_MAX = 2**64 - 1  # the batch kernels take uint64 seeds and epochs
_WORKER_NAME = "edgeopt-loader"  # the prefetch thread's name prefix


def _per_channel(v, name: str, channels: int, default: float) -> np.ndarray:
    if v is None:
        return np.full(channels, default, np.float32)
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or {channels} per-channel numbers, got {v!r}") from None
    if a.ndim == 0:
        a = np.full(channels, float(a))
    if a.shape not in ((channels,), (1,)):
        raise ValueError(f"{name}: expected a scalar or {channels} per-channel values, got shape {a.shape}")
    if a.shape == (1,):
        a = np.full(channels, a[0])
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite values, got {a.tolist()}")
    return a.astype(np.float32)


class DataLoader:
    """Iterate over `dataset` in batches of (x float32 contiguous (B, ...), y int64 (B,)).

    - shuffle: a new permutation every epoch, determined by (seed, epoch).
    - mean, std: per-channel normalization (channels on axis 1), applied after uint8 pixels are
      scaled to [0, 1]; a scalar applies to every channel. Defaults: mean 0, std 1, i.e. only the
      [0, 1] scaling. The loader does not compute statistics itself, because train and test data
      must be normalized with the *training* statistics: pass `train.stats()` to both loaders.
    - augment="crop_flip": random crop with zero padding 4 and random horizontal flip. `crop`
      (padding in pixels, 0 = off) and `flip` (bool) set them individually and override `augment`.
      The padding is zero in pixel space (black), so it normalizes to -mean/std, as with
      torchvision's RandomCrop followed by Normalize. Needs (N, C, H, W) images.
    - drop_last: skip the last batch when it is smaller than batch_size.
    - prefetch: assemble the next batch in a background thread while the caller works on the
      current one (two batches are alive at once). The batches are the same with or without it.
      An error while assembling a batch is raised by the `next()` that asks for that batch. An
      iterator left unfinished (a `break`) stops its thread when it is closed or garbage-collected
      (at once in CPython), after the batch in progress, if any, is done.

    Each `iter(loader)` runs one epoch and advances `loader.epoch`; `set_epoch(e)` picks the epoch
    explicitly (e.g. to resume).
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0,
                 mean=None, std=None, augment: Optional[str] = None, crop: Optional[int] = None,
                 flip: Optional[bool] = None, drop_last: bool = False, prefetch: bool = True):
        check_dataset("dataset", dataset)
        self.batch_size = check_int("batch_size", batch_size, 1, 2**62)
        self.seed = check_int("seed", seed, 0, _SEED_MAX)
        self.shuffle = check_bool("shuffle", shuffle)
        self.drop_last = check_bool("drop_last", drop_last)
        self.prefetch = check_bool("prefetch", prefetch)

        if check_choice("augment", augment, (None, "crop_flip")) is None:
            pad, do_flip = 0, False
        else:
            pad, do_flip = _DEFAULT_CROP_PADDING, True
        if crop is not None:
            pad = check_int("crop", crop, 0, 1 << 20)
        if flip is not None:
            do_flip = check_bool("flip", flip)
        x = dataset.x
        if (pad or do_flip) and x.ndim != 4:
            raise ValueError(f"augment: crop and flip need (N, C, H, W) images, got x of shape {x.shape}")
        self.crop, self.flip = pad, do_flip

        # The storage the kernel reads: uint8 or float32, C-contiguous, viewed as (N, C, H, W).
        # Anything else is converted once here, never per batch.
        if x.dtype != np.uint8 and x.dtype != np.float32:
            x = x.astype(np.float32)
        x = np.ascontiguousarray(x)
        self._sample_shape = tuple(x.shape[1:])
        if x.ndim == 4:
            self._x = x
        elif x.ndim == 3:  # (N, H, W): one channel
            self._x = x.reshape(len(x), 1, x.shape[1], x.shape[2])
        else:  # (N,) or (N, D) or higher: one channel of flat samples
            self._x = x.reshape(len(x), 1, 1, -1)
        channels = self._x.shape[1]
        self.mean = _per_channel(mean, "mean", channels, 0.0)
        self.std = _per_channel(std, "std", channels, 1.0)
        if np.any(self.std <= 0):
            raise ValueError(f"std: expected positive values, got {self.std.tolist()}")
        self.dataset = dataset
        self._y = dataset.y
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration runs (selects its shuffle and augmentation)."""
        self.epoch = check_int("epoch", epoch, 0, _SEED_MAX)

    def __len__(self) -> int:
        n = len(self._y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: Optional[int] = None) -> np.ndarray:
        """The sample order of an epoch (int64 indices into the dataset)."""
        e = self.epoch if epoch is None else check_int("epoch", epoch, 0, _SEED_MAX)
        n = len(self._y)
        if self.shuffle:
            return _core.data.data_permutation(n, self.seed, e)
        return np.arange(n, dtype=np.int64)

    def batch(self, indices, epoch: Optional[int] = None):
        """The (x, y) batch for dataset `indices` as epoch `epoch` would produce it."""
        e = self.epoch if epoch is None else check_int("epoch", epoch, 0, _SEED_MAX)
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices: expected integer indices, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        xb = _core.data.data_assemble_batch(self._x, idx, self.mean, self.std, pad=self.crop,
                                       flip=self.flip, seed=self.seed, epoch=e)
        return xb.reshape((len(idx),) + self._sample_shape), self._y[idx]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch = self.epoch
        self.epoch += 1  # advance now, so two iterators taken in a row see different epochs
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order, n, bs = self.order(epoch), len(self), self.batch_size

        def make(b: int):
            return self.batch(order[b * bs:(b + 1) * bs], epoch)

        if not self.prefetch or n < 2:
            for b in range(n):
                yield make(b)
            return
        # Batch 0 is made here (nothing to overlap it with); from then on the worker makes batch
        # b + 1 while the caller holds batch b. future.result() re-raises a worker's exception.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_WORKER_NAME)
        pending = None
        try:
            for b in range(n):
                current = make(b) if pending is None else pending.result()
                pending = pool.submit(make, b + 1) if b + 1 < n else None
                yield current
        finally:  # finished, failed, or closed early (break): no thread outlives the iterator
            if pending is not None:
                pending.cancel()
            # Wait for a batch in progress, unless this runs in a loader worker (a garbage
            # collection that closes an abandoned iterator may happen there; it cannot join itself).
            pool.shutdown(wait=not threading.current_thread().name.startswith(_WORKER_NAME))

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, crop={self.crop}, flip={self.flip}, drop_last={self.drop_last}, "
                f"prefetch={self.prefetch})")

"""Seeding: one process-wide random generator behind every random choice edgeopt makes.

Weight initialisation, dropout masks (one fresh kernel seed per call) and anything else that draws
random numbers take them from :func:`generator`, so ``edgeopt.manual_seed(s)`` makes a run
repeatable. The generator is numpy's PCG64; the default seed is fixed (0), so even an unseeded
process is deterministic.
"""
from __future__ import annotations

import numpy as np

from ._check import check_int

__all__ = ["manual_seed", "initial_seed", "generator", "next_seed"]

_DEFAULT_SEED = 0
_seed = _DEFAULT_SEED
_rng = np.random.Generator(np.random.PCG64(_DEFAULT_SEED))


def manual_seed(seed: int) -> None:
    """Reset edgeopt's random generator to ``seed`` (a non-negative int)."""
    global _seed, _rng
    _seed = check_int("seed", seed, 0)  # PCG64 takes any size
    _rng = np.random.Generator(np.random.PCG64(_seed))


def initial_seed() -> int:
    """The seed given to the last :func:`manual_seed` (0 if it was never called)."""
    return _seed


def generator() -> np.random.Generator:
    """The process-wide generator (valid until the next :func:`manual_seed`)."""
    return _rng


def next_seed() -> int:
    """A fresh 31-bit seed for a C++ kernel that draws its own random numbers (e.g. dropout)."""
    return int(_rng.integers(0, 2**31 - 1))

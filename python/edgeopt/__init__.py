"""edgeopt: make CNN image classifiers small and fast on edge CPUs.

Python orchestrates; the arithmetic lives in the compiled core ``edgeopt._core``.
"""
from . import _core
from . import nn, optim, random
from . import data, models, train, deploy
from . import quant
from . import prune
from .random import manual_seed

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Bound the number of threads every edgeopt kernel uses (>= 1)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads edgeopt kernels may use (all cores unless set_num_threads was called)."""
    return _core.get_num_threads()

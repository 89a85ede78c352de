"""edgeopt: make CNN image classifiers small and fast on edge CPUs.

Python orchestrates; the arithmetic lives in the compiled core ``edgeopt._core``.
"""
from . import _core
from . import _check
from . import nn, optim, random
from . import data, models, train, graph, deploy
from . import quant
from . import prune
from .random import manual_seed

from ._version import __version__  # noqa: F401


# Far above any CPU edgeopt targets; kernels size per-thread scratch from the count, so an absurd
# value must not reach them.
MAX_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Bound the number of threads every edgeopt kernel uses (1 to MAX_THREADS)."""
    _core.runtime.set_num_threads(_check.check_int("n", n, 1, MAX_THREADS))


def get_num_threads() -> int:
    """Threads edgeopt kernels may use (all cores unless set_num_threads was called)."""
    return _core.runtime.get_num_threads()

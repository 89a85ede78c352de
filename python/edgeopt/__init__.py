"""edgeopt: make CNN image classifiers small and fast on edge CPUs.

Python orchestrates; the arithmetic lives in the compiled core ``edgeopt._core``.
"""
from . import _core
from . import _check
from . import nn, optim, random
from . import data, models, train, graph, deploy
from . import quant
from . import prune
from . import sweep
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


def buffer_cache_info() -> dict:
    """The cache that training kernels' output arrays (activations, gradients) come from: a step
    allocates the same shapes every step, so from the second step on they reuse the previous
    step's memory. Keys: ``idle_bytes`` (held for reuse), ``limit_bytes``, ``live_buffers``
    (held by live arrays), ``hits`` and ``misses`` (requests served from the cache or not)."""
    return _core.runtime.buffer_pool_info()


def set_buffer_cache_limit(nbytes: int) -> None:
    """Cap the idle bytes the cache keeps (default 2 GiB; 0 keeps none)."""
    _core.runtime.buffer_pool_set_limit(_check.check_int("nbytes", nbytes, 0, 2**62))


def empty_cache() -> None:
    """Return every idle cached buffer to the system (arrays still in use are untouched)."""
    _core.runtime.buffer_pool_clear()

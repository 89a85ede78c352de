"""Latency of a deployed Engine on this CPU: wall time of ``engine.run`` per call."""
from __future__ import annotations

import time

import numpy as np

from .. import _core, quant
from .._check import INT32_MAX, check_int

__all__ = ["latency"]


def latency(engine, batch: int = 1, warmup: int = 10, runs: int = 100, seed: int = 0) -> dict:
    """Time `runs` calls of ``engine.run`` on a fixed random batch after `warmup` untimed calls.

    Returns {'median_ms', 'p90_ms', 'mean_ms', 'min_ms', 'runs', 'batch', 'threads', 'isa'}: per
    call (the whole batch), with the thread count and ISA path in force."""
    from .engine import Engine

    if not isinstance(engine, Engine):
        raise TypeError(f"engine: expected an edgeopt.deploy.Engine, got {type(engine).__name__}")
    batch = check_int("batch", batch, 1, INT32_MAX)
    warmup = check_int("warmup", warmup, 0, INT32_MAX)
    runs = check_int("runs", runs, 1, INT32_MAX)
    seed = check_int("seed", seed, 0)
    x = np.random.default_rng(seed).standard_normal((batch,) + tuple(engine.input_shape)).astype(np.float32)
    for _ in range(warmup):
        engine.run(x)
    t = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        engine.run(x)
        t[i] = (time.perf_counter_ns() - t0) / 1e6
    return {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
            "mean_ms": float(t.mean()), "min_ms": float(t.min()), "runs": runs, "batch": batch,
            "threads": _core.runtime.get_num_threads(), "isa": _core.runtime.active_isa()}


quant.hooks.register(latency=latency)

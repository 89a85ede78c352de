"""Finite-difference gradient check for edgeopt modules.

The loss is a random projection L = sum(y * R) (float64 accumulation), so dL/dy = R. The analytic
input and parameter gradients come from ``module.backward(R)``; each is compared, at a few random
coordinates, with the central difference (L(v + eps) - L(v - eps)) / (2 eps) computed in float32
forward passes. The error is measured against the largest analytic gradient entry, since float32
rounding of L is spread over every coordinate alike.
"""
from __future__ import annotations

import numpy as np

import edgeopt


def gradcheck(module, x: np.ndarray, *, n_coords: int = 4, eps: float = 1e-2, tol: float = 1e-2,
              seed: int = 0, reseed: int | None = None, check_params: bool = True) -> None:
    """Raise AssertionError if an input or parameter gradient disagrees with central differences.
    ``reseed``: call ``edgeopt.manual_seed(reseed)`` before every forward (random layers)."""
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float32, copy=True)

    def forward():
        if reseed is not None:
            edgeopt.manual_seed(reseed)
        return module(x)

    y = forward()
    r = rng.standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(forward().astype(np.float64) * r))

    module.zero_grad()
    dx = module.backward(r.astype(np.float32))
    targets = [("input", x, dx)]
    if check_params:
        targets += [(name, p.data, p.grad.copy()) for name, p in module.named_parameters()]
    # A gradient that is ~0 everywhere (e.g. a conv bias followed by BatchNorm) is judged against
    # the largest gradient anywhere: its finite differences are pure rounding noise of L.
    overall = max(float(np.abs(g).max()) for _, _, g in targets)
    for name, arr, grad in targets:
        flat = arr.reshape(-1)
        assert np.shares_memory(flat, arr)
        scale = max(float(np.abs(grad).max()), 1e-2 * overall, 1e-6)
        for i in rng.choice(flat.size, size=min(n_coords, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + np.float32(eps)
            hi, lp = flat[i], loss()
            flat[i] = old - np.float32(eps)
            lo, lm = flat[i], loss()
            flat[i] = old
            numeric = (lp - lm) / (float(hi) - float(lo))
            analytic = float(grad.reshape(-1)[i])
            if not abs(numeric - analytic) <= tol * scale:
                raise AssertionError(f"{type(module).__name__} gradient of {name}[{np.unravel_index(i, arr.shape)}]: "
                                     f"analytic {analytic:.6g}, numeric {numeric:.6g} (scale {scale:.3g})")

"""PyTorch as an oracle: run the same layer in edgeopt and in PyTorch and compare.

``compare_layer(eo_module, torch_module, x)`` copies the PyTorch weights into the edgeopt module
(through ``load_state_dict``, so names must match), runs forward in both, then backward with the
same random ``dy``, and checks the output, the input gradient, every parameter gradient and every
buffer (e.g. BatchNorm running statistics). Errors are relative to the largest magnitude of the
reference, so elements near zero do not need an absolute tolerance of their own.
"""
from __future__ import annotations

import numpy as np
import torch
from tolerances import TOL  # one table of tolerances per dtype (tests/tolerances.py)

torch.set_num_threads(1)


def to_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def rel_err(actual, expected) -> float:
    a = np.asarray(to_numpy(actual), np.float64)
    e = np.asarray(to_numpy(expected), np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"shape mismatch: got {a.shape}, expected {e.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(e).max()), 1e-12)
    return float(np.abs(a - e).max()) / scale


def assert_close(actual, expected, what: str = "value", tol: float = TOL["f32"].rtol) -> None:
    err = rel_err(actual, expected)
    if not err <= tol:  # also catches NaN
        raise AssertionError(f"{what}: relative error {err:.3g} > {tol:g}")


def torch_state_to_numpy(torch_module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in torch_module.state_dict().items()}


def compare_layer(eo_module, torch_module, x: np.ndarray, *, train: bool = True, tol: float = TOL["f32"].rtol,
                  seed: int = 0, copy_weights: bool = True, dy: np.ndarray | None = None):
    """Forward + backward in both frameworks; assert outputs, dx, parameter grads and buffers agree.
    Returns ``(y, dx)`` from edgeopt."""
    eo_module.train(train)
    torch_module.train(train)
    if copy_weights:
        eo_module.load_state_dict(torch_state_to_numpy(torch_module))
    eo_module.zero_grad()
    torch_module.zero_grad(set_to_none=True)

    y = eo_module(x.copy())
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = torch_module(xt)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32, f"output: got {type(y)} {getattr(y, 'dtype', '')}"
    assert_close(y, yt, "output", tol)

    if dy is None:
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    dx = eo_module.backward(dy.copy())
    yt.backward(torch.from_numpy(dy.copy()))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert_close(dx, xt.grad, "input gradient", tol)

    torch_params = dict(torch_module.named_parameters())
    eo_params = dict(eo_module.named_parameters())
    assert sorted(eo_params) == sorted(torch_params), (sorted(eo_params), sorted(torch_params))
    for name, p in eo_params.items():
        tg = torch_params[name].grad
        expected = torch.zeros_like(torch_params[name]) if tg is None else tg
        assert_close(p.grad, expected, f"gradient of {name}", tol)

    torch_buffers = dict(torch_module.named_buffers())
    for name, b in eo_module.named_buffers():
        assert name in torch_buffers, f"buffer {name} has no PyTorch counterpart"
        if b.dtype.kind == "f":
            assert_close(b, torch_buffers[name], f"buffer {name}", tol)
        else:
            np.testing.assert_array_equal(b, to_numpy(torch_buffers[name]), err_msg=f"buffer {name}")
    return y, dx

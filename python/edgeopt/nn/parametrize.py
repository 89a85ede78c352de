"""Parametrizations: a layer computes with a transformed weight, w = p(w_orig), and trains w_orig.

    register_parametrization(conv, "weight", p)   # p.forward(w_orig) -> w ; p.backward(dw) -> dw_orig
    remove_parametrizations(conv, "weight")       # weight = the current w, a plain Parameter again

This is the seam where a technique changes a weight without changing the layer: a pruning mask
(w = w_orig * mask), a fake-quantized weight with a straight-through gradient, a codebook. As every
edgeopt layer, a parametrization has an explicit backward: ``backward(dw)`` follows the latest
``forward`` (keep in ``forward`` whatever ``backward`` needs). Several parametrizations on one
tensor compose: forward in registration order, backward in reverse.

After registering, the module holds the original Parameter as ``<name>_orig`` (so optimizers and
``named_parameters`` train it; gradients reach it through the backward chain) and each
parametrization's ``buffers`` (a dict ``{suffix: array}``) as buffers ``<name>_<suffix>``, so
``state_dict`` carries ``weight_orig`` and e.g. ``weight_mask`` as ``torch.nn.utils.prune`` does, and
``load_state_dict`` copies into them in place (a parametrization keeps using the same arrays; update
them in place too). Reading ``module.<name>`` gives the parametrized value, read-only.

Layers read through this seam the tensors they list in ``_parametrizable`` (Conv2d, Linear and
BatchNorm2d: ``weight``); the value is computed once per forward and reused by backward, and a
layer with nothing registered pays one dict lookup (nn/module.py ``_tensor``).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .._check import check_callable, show_value
from .module import check_module
from .module import Module

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "parametrizations"]


class _Chain:
    """The parametrizations of one tensor, applied to its original Parameter."""

    def __init__(self, module: Module, name: str, original, items: list):
        self.module, self.name, self.original, self.items = module, name, original, items

    def forward(self) -> np.ndarray:
        w = self.original.data
        for p in self.items:
            w = self._checked(p.forward(w), p, "forward")
        return w

    def backward(self, dw: np.ndarray) -> None:
        """Take d(value) back through the chain and accumulate it into the original's grad."""
        for p in reversed(self.items):
            dw = self._checked(p.backward(dw), p, "backward")
        self.original.grad += dw

    def _checked(self, out, p, method: str) -> np.ndarray:
        """Every step must keep the tensor's shape and float32: the kernels and the optimizer
        rely on both, and a wrong one would otherwise fail far from its cause."""
        shape = self.original.shape
        if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.float32:
            got = (f"shape {out.shape} and dtype {out.dtype}" if isinstance(out, np.ndarray)
                   else f"{show_value(out)} ({type(out).__name__})")
            raise ValueError(f"{self.module._short_name()}.{self.name}: parametrization "
                             f"{type(p).__name__}.{method} returned {got}, expected a float32 array of "
                             f"shape {shape}")
        return out


def _buffer_names(name: str, p) -> "OrderedDict[str, np.ndarray]":
    buffers = getattr(p, "buffers", {})
    if not isinstance(buffers, dict):
        raise TypeError(f"parametrization.buffers: expected a dict {{suffix: numpy array}}, got "
                        f"{show_value(buffers)} ({type(buffers).__name__})")
    out = OrderedDict()
    for suffix, array in buffers.items():
        if not isinstance(suffix, str) or not isinstance(array, np.ndarray):
            raise TypeError(f"parametrization.buffers: expected str keys and numpy array values, got "
                            f"{suffix!r}: {show_value(array)}")
        out[f"{name}_{suffix}"] = array
    return out


def _rename(entries: OrderedDict, old: str, new: str) -> None:
    """Rename a key in place, keeping its position (state_dict and parameter order stay put)."""
    items = list(entries.items())
    entries.clear()
    entries.update((new if k == old else k, v) for k, v in items)


def _taken(module: Module, name: str) -> bool:
    d = module.__dict__
    return any(name in d[s] for s in ("_parameters", "_buffers", "_modules", "_parametrizations")) or name in d


def register_parametrization(module, name: str, parametrization) -> Module:
    """Make `module` compute with ``parametrization.forward(<name>_orig)`` in place of parameter
    `name` (module docstring); registering again on the same tensor composes. Returns `module`.

    The new chain is run once here, so a parametrization that returns the wrong shape or dtype
    fails now (ValueError naming the module and the tensor) and leaves the module unchanged."""
    _check_args(module, name)
    check_callable("parametrization.forward", getattr(parametrization, "forward", None))
    check_callable("parametrization.backward", getattr(parametrization, "backward", None))
    who = module._short_name()
    if name not in type(module)._parametrizable:
        readable = ", ".join(repr(n) for n in type(module)._parametrizable) or "no tensor"
        raise ValueError(f"name: {who} reads {readable} through parametrizations, got {name!r}")
    d = module.__dict__
    chain = d["_parametrizations"].get(name)
    if chain is None:
        original = d["_parameters"].get(name)
        if original is None:
            raise ValueError(f"name: {who} has no parameter {name!r} to parametrize")
        if _taken(module, f"{name}_orig"):
            raise ValueError(f"name: {who} already has an attribute '{name}_orig'")
        chain = _Chain(module, name, original, [])
    buffers = _buffer_names(name, parametrization)
    for key in buffers:
        if _taken(module, key):
            raise ValueError(f"parametrization.buffers: {who} already has an attribute {key!r}")
    trial = _Chain(module, name, chain.original, chain.items + [parametrization])
    trial.forward()
    if not chain.items:
        _rename(d["_parameters"], name, f"{name}_orig")
    for key, array in buffers.items():
        d["_buffers"][key] = array
    chain.items.append(parametrization)
    d["_parametrizations"][name] = chain
    return module


def _check_args(module, name) -> None:
    check_module("module", module)
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {show_value(name)} ({type(name).__name__})")


def _chain_of(module, name: str) -> _Chain:
    _check_args(module, name)
    chain = module.__dict__["_parametrizations"].get(name)
    if chain is None:
        raise ValueError(f"name: {module._short_name()} has no parametrization on {name!r}")
    return chain


def remove_parametrizations(module, name: str) -> Module:
    """Make the current parametrized value of `name` permanent: `name` is a plain Parameter again
    (the same Parameter object as ``<name>_orig`` was, so an optimizer keeps training it), and
    ``<name>_orig`` and the parametrizations' buffers are gone. Returns `module`."""
    chain = _chain_of(module, name)
    value = np.array(chain.forward(), copy=True)
    d = module.__dict__
    for p in chain.items:
        for key in _buffer_names(name, p):
            d["_buffers"].pop(key, None)
    del d["_parametrizations"][name]
    _rename(d["_parameters"], f"{name}_orig", name)
    chain.original.data = value
    return module


def is_parametrized(module, name: str | None = None) -> bool:
    """Whether tensor `name` of `module` (any tensor if None) has a parametrization."""
    if name is not None:
        _check_args(module, name)
    check_module("module", module)
    regs = module.__dict__["_parametrizations"]
    return bool(regs) if name is None else name in regs


def parametrizations(module, name: str) -> tuple:
    """The parametrizations of tensor `name`, in registration order (empty if none)."""
    _check_args(module, name)
    chain = module.__dict__["_parametrizations"].get(name)
    return () if chain is None else tuple(chain.items)

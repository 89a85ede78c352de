"""Containers: Sequential, and ResidualBlock for act(body(x) + shortcut(x)).

Training-time fusion. A BatchNorm2d that uses batch statistics runs the activation after it (ReLU,
ReLU6, HardSwish) inside its own passes over memory, and a ResidualBlock whose body ends in such a
BatchNorm has it add the shortcut (and apply a ReLU / ReLU6 activation) there too: one pass forward
and one backward instead of three. The modules stay as they are (parameters, state dicts, tracing,
backward order); a fused activation's backward passes dy through. A module with forward hooks is
never fused, so hooks see every call they would see unfused.
"""
from __future__ import annotations

from collections import OrderedDict

from .._check import check_int
from . import functional as F
from .activation import HardSwish, ReLU, ReLU6
from .module import Module
from .norm import BatchNorm2d

__all__ = ["Sequential", "ResidualBlock"]

_FUSABLE_ACTS = {ReLU: "relu", ReLU6: "relu6", HardSwish: "hardswish"}


def _fusable_bn(m) -> bool:
    return type(m) is BatchNorm2d and not m._hooked() and m._uses_batch_stats()


def _fused_act(bn, act) -> str | None:
    """The kernel's name of ``act`` if ``bn`` can run it fused, else None."""
    name = _FUSABLE_ACTS.get(type(act))
    return name if name is not None and not act._hooked() and _fusable_bn(bn) else None


def _tail_bn(m) -> bool:
    """Whether ``m`` ends in a fusable BatchNorm2d (through nested plain Sequentials)."""
    while type(m) is Sequential and not m._hooked() and len(m):
        m = list(m._modules.values())[-1]
    return _fusable_bn(m)


class Sequential(Module):
    """Children run in order; backward runs them in reverse. Build from modules or an OrderedDict
    of name -> module; supports indexing (int or slice), len, iteration and append."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def add_module(self, name: str, module: Module | None) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: child '{name}' must be a Module, got {type(module).__name__}")
        super().add_module(name, module)

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        n = len(self)
        idx = check_int("index", idx)
        if not -n <= idx < n:
            raise IndexError(f"Sequential index {idx} out of range for {n} modules")
        return list(self._modules.values())[idx % n]

    def forward(self, x):
        return self._forward(x)

    def _forward(self, x, residual=None, act: str = "none"):
        """Runs the children, fusing BatchNorm + activation pairs; with ``residual`` the last child
        (a BatchNorm, or a Sequential ending in one: see ``_tail_bn``) adds it and applies ``act``."""
        mods = list(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if residual is not None and i == n - 1:
                if type(m) is Sequential:
                    x = m._forward(x, residual, act)
                else:  # the BatchNorm keeps its input's shape: check it against the shortcut's
                    ResidualBlock._check_shapes(x, residual)
                    x = m._forward(x, act, residual)
                i += 1
                continue
            fused = _fused_act(m, mods[i + 1]) if i + 1 < n else None
            if fused is not None:
                x = m._forward(x, fused)
                mods[i + 1]._mark_fused(x)
                i += 2
            else:
                x = m(x)
                i += 1
        return x

    def backward(self, dy):
        return self._backward(dy)

    def _backward(self, dy, need_dresidual: bool = False):
        """Reverse order; after a fused residual returns ``(dx, dresidual)``."""
        dres = None
        for k, m in enumerate(reversed(list(self._modules.values()))):
            if need_dresidual and k == 0:
                dy, dres = m._backward(dy, True)
            else:
                dy = m.backward(dy)
        return dy if not need_dresidual else (dy, dres)


class ResidualBlock(Module):
    """y = activation(body(x) + shortcut(x)); ``shortcut=None`` is the identity and
    ``activation=None`` none. Backward sends dy through both branches and sums their dx."""

    def __init__(self, body: Module, shortcut: Module | None = None, activation: Module | None = None):
        super().__init__()
        for name, m in (("body", body), ("shortcut", shortcut), ("activation", activation)):
            if m is not None and not isinstance(m, Module):
                raise TypeError(f"ResidualBlock: {name} must be a Module or None, got {type(m).__name__}")
        if body is None:
            raise TypeError("ResidualBlock: body must be a Module, got None")
        self.body = body
        self.add_module("shortcut", shortcut)
        self.add_module("activation", activation)

    def _fusable(self) -> bool:
        a = self.activation
        return (_tail_bn(self.body) and
                (a is None or (type(a) in (ReLU, ReLU6) and not a._hooked())))

    def forward(self, x):
        if self._fusable():
            skip = x if self.shortcut is None else self.shortcut(x)
            act = "none" if self.activation is None else _FUSABLE_ACTS[type(self.activation)]
            y = self.body._forward(x, skip, act)
            if self.activation is not None:
                self.activation._mark_fused(y)
            self._save_for_backward(y, True)
            return y
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        self._check_shapes(out, skip)
        y = F.add(out, skip)
        if self.activation is not None:
            y = self.activation(y)
        self._save_for_backward(y, False)
        return y

    @staticmethod
    def _check_shapes(out, skip) -> None:
        if getattr(out, "shape", None) != getattr(skip, "shape", None):
            raise ValueError(f"ResidualBlock: body output shape {getattr(out, 'shape', None)} does not "
                             f"match shortcut output shape {getattr(skip, 'shape', None)}")

    def backward(self, dy):
        dy, (fused,) = self._saved_for_backward(dy)
        if self.activation is not None:
            dy = self.activation.backward(dy)  # passes dy through when fused
        if fused:
            dx, dskip = self.body._backward(dy, True)
        else:
            dx, dskip = self.body.backward(dy), dy
        if self.shortcut is not None:
            dskip = self.shortcut.backward(dskip)
        return F.add(dx, dskip)

"""Containers: Sequential, and ResidualBlock for act(body(x) + shortcut(x))."""
from __future__ import annotations

from collections import OrderedDict

from .._check import check_int
from . import functional as F
from .module import Module

__all__ = ["Sequential", "ResidualBlock"]


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
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dy):
        for m in reversed(list(self._modules.values())):
            dy = m.backward(dy)
        return dy


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

    def forward(self, x):
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if getattr(out, "shape", None) != getattr(skip, "shape", None):
            raise ValueError(f"ResidualBlock: body output shape {getattr(out, 'shape', None)} does not "
                             f"match shortcut output shape {getattr(skip, 'shape', None)}")
        y = F.add(out, skip)
        if self.activation is not None:
            y = self.activation(y)
        self._save_for_backward(y)
        return y

    def backward(self, dy):
        dy, _ = self._saved_for_backward(dy)
        if self.activation is not None:
            dy = self.activation.backward(dy)
        dx = self.body.backward(dy)
        dskip = dy if self.shortcut is None else self.shortcut.backward(dy)
        return F.add(dx, dskip)

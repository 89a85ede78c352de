"""Dropout: a fresh mask per call from edgeopt's seeded generator (repeatable after manual_seed)."""
from __future__ import annotations

from .._check import check_bool, check_float
from . import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Training: zero each element with probability p, scale the rest by 1/(1-p). Eval: identity."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = check_float("Dropout.p", p, 0.0, 1.0, max_open=True)  # p = 1 would scale by 1/0
        self.inplace = check_bool("Dropout.inplace", inplace)

    def forward(self, x):
        x = self._check_input(x, None)
        y, mask = F.dropout(x, self.p, self.training)
        self._save_for_backward(y, mask)
        return y

    def backward(self, dy):
        dy, (mask,) = self._saved_for_backward(dy)
        return F.dropout_backward(dy, mask, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"

"""Pruning masks on the parametrization seam (nn/parametrize.py): w = weight_orig * weight_mask.

A pruned weight is zero in every forward whatever an optimizer does to ``weight_orig`` (momentum,
Nesterov, weight decay, Adam's moments), and its gradient is masked too, so fine-tuning cannot
regrow it. ``state_dict`` holds ``weight_orig`` and ``weight_mask``, as ``torch.nn.utils.prune``.
"""
from __future__ import annotations

import copy

import numpy as np

from ..nn.module import check_module
from ..nn import parametrize

__all__ = ["Mask", "set_mask", "remove"]


class Mask:
    """w = w_orig * mask; dw_orig = dw * mask. ``mask`` is float32 0 / 1, shaped like the weight."""

    def __init__(self, mask: np.ndarray):
        self.mask = np.array(mask, dtype=np.float32)
        self.buffers = {"mask": self.mask}  # the module's buffer weight_mask is this array

    def forward(self, w: np.ndarray) -> np.ndarray:
        return w * self.mask

    def backward(self, dw: np.ndarray) -> np.ndarray:
        return dw * self.mask


def _mask_of(module):
    return next((p for p in parametrize.parametrizations(module, "weight") if isinstance(p, Mask)), None)


def set_mask(module, keep: np.ndarray) -> None:
    """Prune `module.weight` where `keep` is False. A weight already pruned stays pruned (masks
    only shrink), so pruning again after fine-tuning is iterative pruning."""
    existing = _mask_of(module)
    if existing is None:
        parametrize.register_parametrization(module, "weight", Mask(keep))
    else:
        existing.mask *= keep  # in place: the module's weight_mask buffer is this array


def remove(model):
    """A copy of `model` with its pruning masks made permanent: each masked weight becomes a plain
    Parameter holding weight_orig * weight_mask (state_dict keys ``weight`` again). `model` is not
    modified. A weight that also has other parametrizations raises ValueError (remove those with
    edgeopt.nn.parametrize.remove_parametrizations first, or remove all of them there)."""
    check_module("model", model)
    stripped = copy.deepcopy(model)
    for name, m in stripped.named_modules():
        if _mask_of(m) is None:
            continue
        others = [type(p).__name__ for p in parametrize.parametrizations(m, "weight") if not isinstance(p, Mask)]
        if others:
            raise ValueError(f"model: '{name}.weight' has parametrizations besides its pruning mask "
                             f"({', '.join(others)}); remove them first")
        parametrize.remove_parametrizations(m, "weight")
    return stripped

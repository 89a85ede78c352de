"""One-shot magnitude pruning (the survey's Algorithm 2 with the |w| score, no fine-tuning).

Units and scores: with ``block=None`` every weight is a unit scored by |w|. With ``block=(br, bc)``
a layer's weight, viewed as a matrix (out channels, in channels * KH * KW), is cut into aligned
br x bc blocks (the last row / column of blocks may be partial) scored by the mean |w| of their
elements; a block is kept or pruned whole, which is what the sparse runtime's 8x1 / 4x1 kernels
want (spmm.h).

Selection: units are ordered by score (ties in a fixed order: layer, then position), and the
lowest are pruned until round(sparsity * n) weights are pruned, n counting one layer
(scope="layer") or all prunable weights together (scope="global", one threshold for the whole
network, so layers with many small weights lose more). Unstructured pruning hits the count
exactly; block pruning overshoots by less than one block per layer (per network for global).
Weights that are already zero have score 0 and are chosen first; on a masked model the scores
read the masked weights and the new mask is ANDed into the old one (prune/mask.py), so pruned
weights stay pruned and a sparsity below the current one changes nothing.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import nn
from .._check import check_choice, check_float, check_pair
from ..nn.module import check_module
from .mask import set_mask

__all__ = ["magnitude", "sparsity", "prunable_layers", "effective_weight"]


def prunable_layers(model) -> list:
    """[(name, module)] of the Conv2d and Linear layers of `model`, in module order."""
    check_module("model", model)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(m, "weight", None) is not None]


def _check_args(model, sparsity, scope, block):
    check_module("model", model)
    # 1.0 (every weight zero) is allowed, as torch.nn.utils.prune allows amount=1.0
    sparsity = check_float("sparsity", sparsity, 0.0, 1.0)
    check_choice("scope", scope, ("global", "layer"))
    if block is not None:
        if not isinstance(block, (tuple, list)):  # a single int is no block shape: rows and cols differ
            raise TypeError(f"block: expected None or (rows, cols) of ints >= 1, got {block!r} "
                            f"({type(block).__name__})")
        block = check_pair("block", block, 1)
    return sparsity, block


def _units(w: np.ndarray, block):
    """(scores, sizes) of the units of weight w, flattened in row-major unit order."""
    if block is None:
        return np.abs(w).ravel().astype(np.float64), None
    br, bc = block
    w2 = np.abs(w.reshape(w.shape[0], -1)).astype(np.float64)
    o, r = w2.shape
    nr, nc = -(-o // br), -(-r // bc)
    pad = np.zeros((nr * br, nc * bc))
    pad[:o, :r] = w2
    cnt = np.zeros_like(pad)
    cnt[:o, :r] = 1.0
    sums = pad.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    sizes = cnt.reshape(nr, br, nc, bc).sum(axis=(1, 3))
    return (sums / sizes).ravel(), sizes.ravel().astype(np.int64)


def _mask(w: np.ndarray, pruned_units: np.ndarray, block) -> np.ndarray:
    """Boolean keep-mask shaped like w, from a boolean array over its units."""
    if block is None:
        return ~pruned_units.reshape(w.shape)
    br, bc = block
    o, r = w.shape[0], w.size // w.shape[0]
    nr, nc = -(-o // br), -(-r // bc)
    full = np.repeat(np.repeat(pruned_units.reshape(nr, nc), br, axis=0), bc, axis=1)[:o, :r]
    return ~full.reshape(w.shape)


def _select(scores: np.ndarray, sizes, target: int) -> np.ndarray:
    """Boolean array: the lowest-scored units whose sizes first add up to >= target."""
    chosen = np.zeros(scores.size, bool)
    if target <= 0:
        return chosen
    order = np.argsort(scores, kind="stable")
    if sizes is None:
        chosen[order[:target]] = True
        return chosen
    m = int(np.searchsorted(np.cumsum(sizes[order]), target)) + 1
    chosen[order[:m]] = True
    return chosen


def magnitude(model, sparsity: float = 0.8, scope: str = "global", block=None):
    """A copy of `model` with the fraction `sparsity` of its Conv2d / Linear weights masked to
    zero, the smallest |w| first (per layer or over the whole network: module docstring). The
    masks are parametrizations (prune/mask.py: weight_orig x weight_mask), so they hold through
    fine-tuning; ``remove`` makes them permanent. Scores read the effective weights, so pruning a
    masked model again keeps its pruned weights pruned. `model` is not modified; biases and
    BatchNorm are copied unchanged."""
    sparsity, block = _check_args(model, sparsity, scope, block)
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned)
    if not layers:
        raise ValueError("model: has no Conv2d or Linear layer to prune")
    weights = [effective_weight(m) for _, m in layers]
    units = [_units(w, block) for w in weights]
    if scope == "layer":
        chosen = [_select(s, z, int(np.floor(sparsity * w.size + 0.5))) for w, (s, z) in zip(weights, units)]
    else:
        total = sum(w.size for w in weights)
        scores = np.concatenate([s for s, _ in units])
        sizes = None if block is None else np.concatenate([z for _, z in units])
        flat = _select(scores, sizes, int(np.floor(sparsity * total + 0.5)))
        bounds = np.cumsum([0] + [s.size for s, _ in units])
        chosen = [flat[bounds[i]:bounds[i + 1]] for i in range(len(units))]
    for (_, m), w, c in zip(layers, weights, chosen):
        set_mask(m, _mask(w, c, block))
    return pruned


def effective_weight(module) -> np.ndarray:
    """The weight `module` computes with (masks applied), whether or not it is parametrized."""
    return np.asarray(module.weight)


def sparsity(model) -> dict:
    """Fraction of zero weights: {'layers': {name: fraction}, 'overall': fraction, 'zeros': int,
    'total': int} over the effective Conv2d and Linear weights (masks applied; biases and
    BatchNorm not counted)."""
    check_module("model", model)
    layers, zeros, total = {}, 0, 0
    for name, m in prunable_layers(model):
        w = effective_weight(m)
        z = int(w.size - np.count_nonzero(w))
        layers[name] = z / w.size if w.size else 0.0
        zeros += z
        total += w.size
    return {"layers": layers, "overall": zeros / total if total else 0.0, "zeros": zeros, "total": total}

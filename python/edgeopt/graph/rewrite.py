"""Graph rewrites, each a function Graph -> Graph (a new graph; the input is not modified):

  fold_batchnorm   conv -> bn  becomes one conv:  w' = w * scale,  b' = shift  (batchnorm_affine
                   of the conv's bias b: scale = g/sqrt(v+eps), shift = (b - m) * scale + beta)
  fuse_residual    add(conv(x), skip) becomes conv(x) with residual=skip, so the add happens in the
                   conv's output pass (skip must be computed before the conv runs)
  fuse_activation  conv/linear -> relu|relu6|hardswish becomes one op with activation=...

`fuse(graph)` applies all three in that order: conv + BN + residual add + activation end up as one
operator, one pass over the output.
"""
from __future__ import annotations

import copy

import numpy as np

from .ir import Graph, Node

FUSABLE_ACTIVATIONS = ("relu", "relu6", "hardswish")


def batchnorm_affine(params: dict, eps: float, bias=None):
    """Eval-mode BatchNorm (params weight g, bias beta, running_mean m, running_var v) after a
    layer with bias `bias` (None: 0) as one per-channel affine y = scale * x + shift, in float64:
    scale = g / sqrt(v + eps), shift = (bias - m) * scale + beta. The one place BN is folded:
    into a conv here, into a runtime channel affine where no conv precedes it."""
    scale = params["weight"].astype(np.float64) / np.sqrt(params["running_var"].astype(np.float64) + eps)
    b = np.zeros(len(scale)) if bias is None else bias.astype(np.float64)
    return scale, (b - params["running_mean"]) * scale + params["bias"]


def _clone(g: Graph) -> Graph:
    nodes = [copy.copy(n) for n in g.nodes]
    for n in nodes:
        n.attrs = dict(n.attrs)
        n.params = dict(n.params)
        n.inputs = list(n.inputs)
    return Graph(nodes, g.input_shape, dict(g.shapes), g.output, g.input, dict(g.qparams))


def _uses(g: Graph, t: int) -> int:
    return sum(n.inputs.count(t) + (n.attrs.get("residual") == t) for n in g.nodes) + (g.output == t)


def _absorb(g: Graph, keep: Node, gone: Node, inner: str | None = None) -> None:
    """`keep` now also computes `gone` (fused into it): readers of gone's output read keep's.
    Learned quantization parameters follow the values: gone's to keep's output, keep's own to the
    inner point ``(keep.output, inner)`` that now names its former value (None: dropped)."""
    keep.name = f"{keep.name}+{gone.name}"
    own = g.qparams.pop(keep.output, None)
    if own is not None and inner is not None:
        g.qparams[(keep.output, inner)] = own
    if gone.output in g.qparams:
        g.qparams[keep.output] = g.qparams.pop(gone.output)
    _replace(g, gone.output, keep.output)
    g.shapes.pop(gone.output, None)


def _replace(g: Graph, old: int, new: int) -> None:
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        if n.attrs.get("residual") == old:
            n.attrs["residual"] = new
    if g.output == old:
        g.output = new


def fold_batchnorm(graph: Graph) -> Graph:
    g = _clone(graph)
    out, by_output = [], {n.output: n for n in g.nodes}
    for n in g.nodes:
        src = by_output.get(n.inputs[0]) if n.op == "batchnorm2d" else None
        if (src is not None and src.op == "conv2d" and src.attrs.get("activation", "none") == "none"
                and src.attrs.get("residual") is None and _uses(g, src.output) == 1):
            scale, shift = batchnorm_affine(n.params, n.attrs["eps"], src.params.get("bias"))
            w = src.params["weight"].astype(np.float64) * scale[:, None, None, None]
            src.params["weight"] = w.astype(np.float32)
            src.params["bias"] = shift.astype(np.float32)
            _absorb(g, src, n)
            continue
        out.append(n)
    g.nodes = out
    return g


def fuse_residual(graph: Graph) -> Graph:
    g = _clone(graph)
    order = {n.output: i for i, n in enumerate(g.nodes)}
    order[g.input] = -1
    by_output = {n.output: n for n in g.nodes}
    out = []
    for n in g.nodes:
        if n.op == "add":
            for conv_t, skip_t in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])):
                c = by_output.get(conv_t)
                if (c is not None and c.op == "conv2d" and c.attrs.get("residual") is None
                        and c.attrs.get("activation", "none") == "none" and _uses(g, conv_t) == 1
                        and order[skip_t] < order[conv_t] and g.shapes[skip_t] == g.shapes[conv_t]):
                    c.attrs["residual"] = skip_t
                    _absorb(g, c, n, "conv")
                    break
            else:
                out.append(n)
            continue
        out.append(n)
    g.nodes = out
    return g


def fuse_activation(graph: Graph) -> Graph:
    g = _clone(graph)
    by_output = {n.output: n for n in g.nodes}
    out = []
    for n in g.nodes:
        src = by_output.get(n.inputs[0]) if n.op in FUSABLE_ACTIVATIONS else None
        if (src is not None and src.op in ("conv2d", "linear") and src.attrs.get("activation", "none") == "none"
                and _uses(g, src.output) == 1):
            src.attrs["activation"] = n.op
            _absorb(g, src, n, "sum" if src.attrs.get("residual") is not None else "conv")
            continue
        out.append(n)
    g.nodes = out
    return g


def fuse(graph: Graph) -> Graph:
    return fuse_activation(fuse_residual(fold_batchnorm(graph)))

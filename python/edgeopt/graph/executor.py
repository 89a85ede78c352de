"""The reference executor: a Graph run node by node with edgeopt's fp32 kernels, the values every
backend (runtime schemes, ONNX export) is compared against, with observation hooks.

    y = execute(graph, x)                                   # or graph.execute(x)
    graph.execute(x, observe=lambda point, value: ...)      # every point (Graph.points())
    graph.execute(x, observe={point: lambda value: ..., ...})   # chosen points

A hook sees each point once per call, as soon as it is computed, as a float32 array of the
batch's shape. The array is the executor's own (no copy, so observing costs nothing): a hook must
not modify it.
"""
from __future__ import annotations

import numpy as np

from .._check import check_callable
from ..nn import functional as F

__all__ = ["execute"]


def execute(graph, x: np.ndarray, observe=None) -> np.ndarray:
    """The output of `graph` (an edgeopt.graph.Graph) for input `x` (N, C, H, W).

    observe: None; a callable fn(point, value) called for every point; or a dict {point: fn(value)}
    for chosen points (ints for tensor ids, (id, 'conv') / (id, 'sum') inside fused nodes: see
    edgeopt.graph.ir). A key that is not a point of the graph raises ValueError."""
    emit = _hooks(graph, observe)
    vals = {graph.input: np.ascontiguousarray(x, dtype=np.float32)}
    emit(graph.input, vals[graph.input])
    for n in graph.nodes:
        vals[n.output] = _eval_node(n, [vals[i] for i in n.inputs], vals, emit)
        emit(n.output, vals[n.output])
    return vals[graph.output]


def _hooks(graph, observe):
    """observe as one function emit(point, value)."""
    if observe is None:
        return lambda point, value: None
    if not isinstance(observe, dict):
        return check_callable("observe", observe)
    known = set(graph.points())
    for point, fn in observe.items():
        if point not in known:
            raise ValueError(f"observe: {point!r} is not a point of this graph (tensor ids 0..{max(graph.shapes)}, "
                             "(id, 'conv') / (id, 'sum') inside fused nodes: see Graph.points())")
        check_callable(f"observe[{point!r}]", fn)

    def emit(point, value):
        fn = observe.get(point)
        if fn is not None:
            fn(value)
    return emit


def _eval_node(n, args, vals, emit):
    a = n.attrs
    if n.op == "conv2d":
        y = F.conv2d(args[0], n.params["weight"], n.params.get("bias"), a["stride"], a["padding"], a["groups"])
    elif n.op == "linear":
        y = F.linear(args[0], n.params["weight"], n.params.get("bias"))
    elif n.op == "batchnorm2d":
        p = n.params
        y = F.batch_norm_eval(args[0], p["weight"], p["bias"], p["running_mean"], p["running_var"], a["eps"])
    elif n.op in ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid"):
        y = getattr(F, n.op)(args[0])
    elif n.op == "sign":
        y = F.binary_sign(args[0], n.params.get("threshold"))
    elif n.op == "maxpool2d":
        y = F.max_pool2d(args[0], a["kernel"], a["stride"], a["padding"])
    elif n.op == "avgpool2d":
        y = F.avg_pool2d(args[0], a["kernel"], a["stride"], a["padding"], a["count_include_pad"])
    elif n.op == "global_avgpool2d":
        y = F.global_avg_pool2d(args[0])
    elif n.op == "flatten":
        y = args[0].reshape(args[0].shape[0], -1)
    elif n.op == "add":
        y = F.add(args[0], args[1])
    elif n.op == "channel_scale":
        s = args[1]
        y = F.channel_scale(args[0], np.ascontiguousarray(s.reshape(s.shape[0], s.shape[1])))
    else:
        raise NotImplementedError(f"graph: no evaluator for op {n.op!r}")
    inner = n.inner_points()
    if inner:  # a fused conv / linear: residual add, then activation
        emit((n.output, "conv"), y)
        if a.get("residual") is not None:
            y = F.add(y, vals[a["residual"]])
            if "sum" in inner:
                emit((n.output, "sum"), y)
        act = a.get("activation", "none")
        if act != "none":
            y = getattr(F, act)(y)
    return y

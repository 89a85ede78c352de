"""`trace(model, input_shape)`: a model as a Graph (edgeopt.graph.ir).

The tracer walks the module tree (Sequential, ResidualBlock, SqueezeExcitation and leaf layers),
runs each leaf once on a sample input to learn every tensor's shape, and records one Node per
operator. A module with a ``trace_qparams()`` method (quantization-aware training's FakeQuantize)
is no operator: it passes its tensor on and, once it has learned them, records that tensor's
(scale, zero point) in ``Graph.qparams``. The runtime compiler, the ONNX exporter and calibration all read this one graph, so they
agree on what the model computes.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from .._check import check_shape
from ..nn.module import check_module
from .._finite import check_finite
from .ir import Graph, Node

ACTIVATIONS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.HardSwish: "hardswish",
               nn.HardSigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.BinarySign: "sign"}


class _Tracer:
    def __init__(self):
        self.nodes, self.shapes, self.next_id = [], {}, 1
        self.qparams = {}

    def emit(self, op, inputs, value, name, attrs=None, params=None, module=None) -> int:
        out = self.next_id
        self.next_id += 1
        self.nodes.append(Node(op, list(inputs), out, attrs or {}, params or {}, name, module))
        self.shapes[out] = tuple(value.shape)
        return out

    def run(self, m, name: str, t: int, x: np.ndarray):
        """Trace module m applied to tensor t (value x); returns (tensor id, value)."""
        if isinstance(m, nn.Sequential):
            for child_name, child in m._modules.items():
                t, x = self.run(child, f"{name}.{child_name}" if name else child_name, t, x)
            return t, x
        if isinstance(m, nn.ResidualBlock):
            prefix = f"{name}." if name else ""
            body_name = getattr(m, "_body_name", "body")
            tb, xb = self.run(m.body, prefix + body_name, t, x)
            ts, xs = (t, x) if m.shortcut is None else self.run(m.shortcut, prefix + "shortcut", t, x)
            y = nn.functional.add(xb, xs)
            t = self.emit("add", [tb, ts], y, prefix + "add")
            if m.activation is not None:
                t, y = self.run(m.activation, prefix + "activation", t, y)
            return t, y
        if isinstance(m, nn.SqueezeExcitation):
            prefix = f"{name}." if name else ""
            ts, s = t, x
            for child in ("avgpool", "fc1", "activation", "fc2", "scale_activation"):
                ts, s = self.run(getattr(m, child), prefix + child, ts, s)
            y = m.forward(x)
            return self.emit("channel_scale", [t, ts], y, prefix + "scale"), y
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return t, x
        if hasattr(type(m), "trace_qparams"):  # a fake quantizer (quant/qat.py): no operator
            q = m.trace_qparams()
            if q is not None:
                self.qparams[t] = q
            return t, m.forward(x)
        op, attrs, params = _leaf(m, name)
        _check_params(name, params)
        y = m.forward(x)
        return self.emit(op, [t], y, name, attrs, params, m), y


def _check_params(name, params) -> None:
    """Every deploy scheme and export starts from a trace, so this is where a non-finite weight,
    bias or BatchNorm statistic is stopped: int8 quantization would turn it into a plausible
    finite value and fp32 / fp16 would carry it into every output."""
    named = [(f"{name}.{k}" if name else k, v) for k, v in params.items() if v is not None]
    check_finite(named, suffix=": a model with non-finite parameters cannot be deployed or exported")
    var = params.get("running_var")
    if var is not None and (var < 0).any():  # folding takes its square root: NaN weights
        i = int(np.argmax(var < 0))
        raise ValueError(f"{name + '.' if name else ''}running_var holds {float(var[i])!r} at index ({i},): "
                         "a variance must be >= 0; a model with a negative one cannot be deployed or exported")


def _copy(p):
    return None if p is None else np.array(p.data if hasattr(p, "data") else p, dtype=np.float32, copy=True)


def _leaf(m, name):
    if isinstance(m, nn.Conv2d):
        return "conv2d", {"stride": m.stride, "padding": m.padding, "groups": m.groups,
                          "activation": "none", "residual": None}, \
            {"weight": _copy(m.weight), "bias": _copy(m.bias)}
    if isinstance(m, nn.Linear):
        return "linear", {"activation": "none", "residual": None}, {"weight": _copy(m.weight), "bias": _copy(m.bias)}
    if isinstance(m, nn.BatchNorm2d):
        c = m.num_features
        w = _copy(m.weight) if m.affine else np.ones(c, np.float32)
        b = _copy(m.bias) if m.affine else np.zeros(c, np.float32)
        return "batchnorm2d", {"eps": m.eps}, {"weight": w, "bias": b, "running_mean": _copy(m.running_mean),
                                               "running_var": _copy(m.running_var)}
    if isinstance(m, nn.BinarySign) and m.threshold is not None:
        return "sign", {}, {"threshold": _copy(m.threshold)}
    for cls, op in ACTIVATIONS.items():
        if type(m) is cls or isinstance(m, cls):
            return op, {}, {}
    if isinstance(m, nn.MaxPool2d):
        return "maxpool2d", {"kernel": m.kernel_size, "stride": m.stride, "padding": m.padding}, {}
    if isinstance(m, nn.AvgPool2d):
        return "avgpool2d", {"kernel": m.kernel_size, "stride": m.stride, "padding": m.padding,
                             "count_include_pad": m.count_include_pad}, {}
    if isinstance(m, nn.GlobalAvgPool2d):
        return "global_avgpool2d", {}, {}
    if isinstance(m, nn.Flatten):
        return "flatten", {}, {}
    raise NotImplementedError(
        f"trace: layer '{name}' ({type(m).__name__}) has no inference operator yet; supported: Conv2d, "
        "Linear, BatchNorm2d, activations, pooling, Flatten, Dropout, Identity, Sequential, ResidualBlock, "
        "SqueezeExcitation")


def trace(model, input_shape) -> Graph:
    """Trace `model` (an edgeopt.nn.Module) at `input_shape` (N, C, H, W) into a Graph. The model
    is run in eval mode without recording for backward; its mode is restored afterwards. A NaN or
    Inf in any weight, bias or BatchNorm statistic raises ValueError naming the tensor."""
    check_module("model", model)
    input_shape = check_shape("input_shape", input_shape, 4)
    was_training = model.training
    model.eval()
    tr = _Tracer()
    x = np.zeros(input_shape, np.float32)
    try:
        with nn.no_grad():
            out, _ = tr.run(model, "", 0, x)
    finally:
        model.train(was_training)
    shapes = dict(tr.shapes)
    shapes[0] = input_shape
    return Graph(tr.nodes, input_shape, shapes, out, 0, tr.qparams)

"""The IR: a model as a flat list of operator nodes in SSA form.

Every tensor is an int id: the graph input is `Graph.input` (0 from `trace`), each node writes one
new id. Tensors are NCHW here; a backend may use another layout internally.

Ops and their attrs:
  conv2d(x)            stride, padding, groups, activation ('none'|'relu'|'relu6'|'hardswish'),
                       residual (tensor id added before the activation, or None); params weight, bias
  linear(x)            activation, residual; params weight (out, in), bias
  batchnorm2d(x)       eps; params weight, bias, running_mean, running_var
  relu|relu6|hardswish|hardsigmoid|sigmoid(x)
  maxpool2d(x), avgpool2d(x)   kernel, stride, padding (+ count_include_pad)
  global_avgpool2d(x)  -> (N, C, 1, 1)
  flatten(x)           -> (N, prod(rest))
  add(a, b)
  channel_scale(x, s)  x * s, s (N, C, 1, 1) (squeeze-excitation)

Points. What the executor can show an observer (`Graph.points()`): every tensor id, and inside a
fused conv / linear the values fusion hid, keyed (id, 'conv') for the conv / GEMM result before
the residual add and activation, and (id, 'sum') for the residual sum before the activation (each
only where it differs from the node's output). Calibration needs them: a fused node's
intermediate ranges are what integer kernels requantize to.
"""
from __future__ import annotations

import dataclasses

from .executor import execute as _execute


@dataclasses.dataclass
class Node:
    op: str
    inputs: list
    output: int
    attrs: dict = dataclasses.field(default_factory=dict)
    params: dict = dataclasses.field(default_factory=dict)
    name: str = ""
    module: object = None  # the leaf module it came from

    def inner_points(self) -> tuple:
        """Names of the values inside this node that fusion hid: () unless a fused conv / linear."""
        if self.op not in ("conv2d", "linear"):
            return ()
        act, res = self.attrs.get("activation", "none") != "none", self.attrs.get("residual") is not None
        return (("conv",) if act or res else ()) + (("sum",) if act and res else ())

    def __repr__(self) -> str:
        a = ", ".join(f"{k}={v}" for k, v in self.attrs.items())
        return f"%{self.output} = {self.op}({', '.join('%' + str(i) for i in self.inputs)}{', ' if a else ''}{a})  # {self.name}"


@dataclasses.dataclass
class Graph:
    nodes: list
    input_shape: tuple
    shapes: dict          # tensor id -> shape (batch dim as traced)
    output: int
    input: int = 0
    # tensor id -> (scale, zero_point) learned by quantization-aware training (a FakeQuantize
    # module on that tensor, quant/qat.py); the int8-full lowering uses them instead of calibrating
    qparams: dict = dataclasses.field(default_factory=dict)

    def consumers(self, tensor: int) -> list:
        return [n for n in self.nodes if tensor in n.inputs or n.attrs.get("residual") == tensor]

    def producer(self, tensor: int):
        for n in self.nodes:
            if n.output == tensor:
                return n
        return None

    def points(self) -> list:
        """Every key an observer can watch (module docstring), in the order execute produces them."""
        out = [self.input]
        for n in self.nodes:
            out += [(n.output, p) for p in n.inner_points()] + [n.output]
        return out

    def __str__(self) -> str:
        lines = [f"graph(%{self.input}: {self.input_shape}) -> %{self.output}"]
        lines += ["  " + repr(n) + f"  {self.shapes[n.output]}" for n in self.nodes]
        return "\n".join(lines)

    def describe(self, point) -> str:
        """A point in words (for error messages): 'the graph input', "the output of layer
        '<name>'", 'the conv result inside ...', 'the residual sum inside ...'."""
        tensor, inner = point if isinstance(point, tuple) else (point, None)
        n = self.producer(tensor)
        what = "the graph input" if n is None else f"the output of layer '{n.name}'"
        return {None: what, "conv": f"the conv result inside {what}", "sum": f"the residual sum inside {what}"}[inner]

    def execute(self, x, observe=None):
        """Run the graph with edgeopt's fp32 kernels (the reference for every backend); see
        edgeopt.graph.executor for `observe`."""
        return _execute(self, x, observe)

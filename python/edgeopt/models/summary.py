"""summary(model, input_shape): per-layer output shape, parameters, MACs and activation bytes.

Computed by running one forward pass (eval mode, no_grad, zeros of ``input_shape``) with a forward
hook on every leaf module (a module without children), so rows come in execution order and the
shapes are the ones the model really produces.

Counting rules:
* params — the leaf's own parameters, counted at its first call (a module called twice is listed
  twice, its parameters once).
* MACs — multiply-accumulates of Conv2d (N·Cout·OH·OW·Cin/groups·KH·KW) and Linear
  (rows·in·out); BN, activations, pooling and elementwise adds are 0, as is customary (BN folds
  into the conv at deployment).
* activation bytes — bytes of each leaf's output (float32). Residual sums and the SE channel
  scaling happen inside their containers and are not listed.
Totals are the sums of the rows; ``params`` also equals the model's parameter count whenever every
parameter belongs to a leaf that ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import nn
from .._check import check_shape
from ..nn.module import check_module

__all__ = ["LayerRow", "ModelSummary", "summary"]


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int


@dataclass
class ModelSummary:
    input_shape: tuple
    output_shape: tuple
    rows: list = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows)

    @property
    def param_bytes(self) -> int:
        """float32 storage of the parameters."""
        return 4 * self.params

    def as_dicts(self) -> list:
        """Rows as plain dicts (e.g. for ``pandas.DataFrame``)."""
        return [dict(r.__dict__) for r in self.rows]

    def __str__(self) -> str:
        head = ("layer", "type", "output shape", "params", "MACs", "act bytes")
        body = [(r.name, r.type, str(tuple(r.output_shape)), f"{r.params:,}", f"{r.macs:,}",
                 f"{r.activation_bytes:,}") for r in self.rows]
        widths = [max([len(h)] + [len(row[i]) for row in body]) for i, h in enumerate(head)]
        right = (False, False, False, True, True, True)

        def fmt(cells):
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right))

        rule = "-" * len(fmt(head))
        lines = [fmt(head), rule] + [fmt(row) for row in body] + [rule]
        lines += [f"input {tuple(self.input_shape)} -> output {tuple(self.output_shape)}",
                  f"params: {self.params:,} ({_human(self.params)}, {_human(self.param_bytes, 'B')} as float32)",
                  f"MACs: {self.macs:,} ({_human(self.macs)})",
                  f"activation bytes: {self.activation_bytes:,} ({_human(self.activation_bytes, 'B')})"]
        return "\n".join(lines)

    __repr__ = __str__  # a notebook cell shows the table


def _human(n: int, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n} {unit}".rstrip()


def _macs(module: nn.Module, out: np.ndarray) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return int(out.size) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return int(out.size) * module.in_features
    return 0


def _check_shape(model, input_shape) -> tuple:
    shape = check_shape("input_shape", input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ValueError(f"input_shape: expected (N, C, H, W) or (C, H, W), got {input_shape!r}")
    want = getattr(model, "in_channels", None)
    if isinstance(want, int) and shape[1] != want:
        who = getattr(model, "arch", type(model).__name__)
        raise ValueError(f"input_shape: {who} takes {want} input channel(s), got input_shape {tuple(input_shape)}")
    return shape


def summary(model: nn.Module, input_shape=(1, 3, 32, 32)) -> ModelSummary:
    """Run ``model`` once on zeros of ``input_shape`` ((N, C, H, W), or (C, H, W) meaning N = 1)
    and tabulate every leaf layer. The model's train/eval flags are restored afterwards."""
    check_module("model", model)
    shape = _check_shape(model, input_shape)
    names = {id(m): name for name, m in model.named_modules()}
    rows, counted, handles = [], set(), []

    def hook(module, inputs, out):
        params = 0
        if id(module) not in counted:
            counted.add(id(module))
            params = sum(p.size for p in module.parameters(recurse=False))
        out_arr = np.asarray(out)
        rows.append(LayerRow(names.get(id(module), "?"), type(module).__name__, out_arr.shape,
                             int(params), _macs(module, out_arr), int(out_arr.nbytes)))

    modes = [(m, m.training) for m in model.modules()]
    try:
        for m in model.modules():
            if not any(True for _ in m.children()):
                handles.append(m.register_forward_hook(hook))
        model.eval()
        with nn.no_grad():
            y = model(np.zeros(shape, np.float32))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.__dict__["training"] = mode
    return ModelSummary(shape, tuple(np.asarray(y).shape), rows)

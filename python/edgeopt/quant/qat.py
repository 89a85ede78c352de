"""Quantization-aware training: the model trains with the rounding its int8 Engine will apply.

    model = quant.prepare_qat(model, input_shape)      # in place: fake quantization inserted
    fit(model, ..., callbacks=[quant.FreezeBatchNorm(at_step), quant.FreezeObservers(at_step)])
    model = quant.convert(model)                        # scales fixed, weights baked
    engine = deploy.compile(model, scheme="int8-full")  # uses the learned scales: no calibration

Where. ``prepare_qat`` asks the int8-full lowering itself which tensors it quantizes (it lowers
the traced, BN-folded graph once and records every range it reads) and puts a ``FakeQuantize``
exactly there: the graph input, each conv's or linear layer's output after BN and the fused
activation, the conv output and the sum inside a residual block, pooling outputs. A module with
such a point gets a ``FakeQuantize`` right after it (a sibling in its Sequential, or the two
wrapped in a Sequential where the parent is not one); a residual sum gets one in front of the
block's activation. The tracer reads each one's (scale, zero point) back (graph.qparams) and the
lowering uses them instead of calibrated ranges, so both quantize the same tensors.

Weights. Every conv and linear weight is fake-quantized per output channel, symmetric, through
``nn.parametrize`` (``FakeQuantWeight``). A conv followed by a BatchNorm is quantized as the
lowering will see it, folded: w -> fq(w * f) / f with f = gamma / sqrt(running_var + eps). The
BatchNorm after it then computes BN(conv(x, fq(w f) / f)); once its statistics are frozen
(``FreezeBatchNorm``: running statistics, no more updates) that is exactly the folded conv with
fq(w f) as its weights, which is what the Engine runs.

Activations. ``FakeQuantize`` observes with a MovingAverageMinMaxObserver (asymmetric uint8, as
the int8 Engine's activations) until ``FreezeObservers``; forward and backward (straight-through,
zero outside the clipping range) are C++ loops (quant.fake_quantize).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import _core, nn
from .._check import check_bool, check_choice, check_int, check_shape
from ..graph import fold_batchnorm, trace
from ..nn.module import Module, check_module
from ..nn.parametrize import is_parametrized, register_parametrization, remove_parametrizations
from ..train.callbacks import Callback
from . import hooks
from .observer import MovingAverageMinMaxObserver
from .qparams import _check_bits, qrange
from .quantize import _nonfinite

__all__ = ["fake_quantize", "FakeQuantize", "FakeQuantWeight", "BinaryWeight", "prepare_qat", "convert", "FreezeObservers",
           "FreezeBatchNorm", "low_bit_layers"]


def _as_rows(x, axis):
    x = np.ascontiguousarray(x, dtype=np.float32)
    if axis is None:
        return x.reshape(1, -1)
    if axis != 0:
        raise ValueError(f"axis: fake quantization is per tensor (None) or per channel along axis 0, got {axis}")
    return x.reshape(x.shape[0], -1)


def _params(scale, zero_point, rows):
    s = np.broadcast_to(np.asarray(scale, np.float32), (rows,)).copy()
    z = np.broadcast_to(np.asarray(zero_point, np.int32), (rows,)).copy()
    return s, z


def fake_quantize(x, scale, zero_point=0, qmin: int = 0, qmax: int = 255, axis=None, name: str = "x"):
    """y = scale * (clamp(rint(x / scale) + zero_point, qmin, qmax) - zero_point), in float32 (x times
    float32(1 / scale): the Engine's quantize op divides, and the two round differently only within
    an ulp of a tie, which training does not notice; the product is the cheaper loop), per tensor or
    per channel along axis 0."""
    rows = _as_rows(x, axis)
    s, z = _params(scale, zero_point, len(rows))
    y, bad = _core.quant.quant_fake_quantize_rows(rows, s, z, int(qmin), int(qmax))
    if bad >= 0:
        raise _nonfinite(name, rows, bad, None, np.shape(x))
    return y.reshape(np.shape(x))


def _fake_quantize_backward(x, dy, scale, zero_point, qmin, qmax, axis=None):
    rows = _as_rows(x, axis)
    s, z = _params(scale, zero_point, len(rows))
    dx = _core.quant.quant_fake_quantize_backward_rows(rows, _as_rows(dy, axis), s, z, int(qmin), int(qmax))
    return dx.reshape(np.shape(x))


class FakeQuantize(Module):
    """Fake-quantizes the tensor passing through: observes it (in training, until
    ``observer_enabled`` is turned off), keeps (scale, zero_point) as buffers, and rounds with them.
    Backward: dy where the value was inside the clipping range, else 0. Before anything was
    observed (scale 0) it passes values through."""

    def __init__(self, bits: int = 8, observer=None):
        super().__init__()
        self.bits = _check_bits(bits)
        self.observer = observer if observer is not None else MovingAverageMinMaxObserver(bits=bits, symmetric=False)
        self.observer_enabled = True
        self.fake_quant_enabled = True
        self.register_buffer("scale", np.zeros(1, np.float32))
        self.register_buffer("zero_point", np.zeros(1, np.int32))

    def qparams(self):
        """(scale, zero_point), or None before any observation."""
        return None if self.scale[0] == 0 else (float(self.scale[0]), int(self.zero_point[0]))

    trace_qparams = qparams  # the tracer's protocol (graph/tracer.py): no operator, these qparams

    def forward(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.training and self.observer_enabled:
            self.observer.name = self._short_name()
            self.observer(x)
            s, z = self.observer.calculate_qparams()
            self.scale[0], self.zero_point[0] = np.float32(s), z
        qmin, qmax = qrange(self.bits, False)
        on = self.fake_quant_enabled and self.scale[0] > 0
        y = fake_quantize(x, self.scale, self.zero_point, qmin, qmax, name=self._short_name()) if on else x
        self._save_for_backward(y, x if on else None, self.scale.copy(), self.zero_point.copy())
        return y

    def backward(self, dy):
        dy, (x, s, z) = self._saved_for_backward(dy)
        if x is None:
            return dy
        return _fake_quantize_backward(x, dy, s, z, *qrange(self.bits, False))

    def extra_repr(self) -> str:
        q = self.qparams()
        return f"bits={self.bits}, " + ("not observed yet" if q is None else f"scale={q[0]:.6g}, zero_point={q[1]}")


class FakeQuantWeight:
    """Parametrization: a weight fake-quantized per output channel, symmetric, with the scale
    max |w_c| / Qmax of the current weights (so nothing is clipped and the straight-through
    gradient is dw itself). With ``bn`` (the BatchNorm after a conv), the weight is quantized
    folded: fq(w f) / f, f = gamma / sqrt(running_var + eps) per channel."""

    def __init__(self, bits: int = 8, bn=None):
        self.bits = _check_bits(bits)
        self.bn = bn

    def _fold(self, w):
        if self.bn is None:
            return None
        bn = self.bn
        gamma = bn.weight.data if bn.affine else np.ones(bn.num_features, np.float32)
        f = (gamma.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)).astype(np.float32)
        f = np.where(f == 0, np.float32(1), f)  # a zeroed channel: nothing to fold
        return f.reshape((-1,) + (1,) * (w.ndim - 1))

    def forward(self, w):
        f = self._fold(w)
        wf = w * f if f is not None else w
        qmax = qrange(self.bits, True)[1]
        amax = np.abs(wf.reshape(len(wf), -1)).max(axis=1)
        s = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
        q = fake_quantize(wf, s, 0, -qmax, qmax, axis=0, name="weight")
        return (q / f).astype(np.float32) if f is not None else q

    def backward(self, dw):
        return dw


class BinaryWeight(FakeQuantWeight):
    """Parametrization: binary weights, alpha * sign(w) per output channel with alpha = mean |w_c|
    (XNOR-Net), folded with ``bn`` like FakeQuantWeight; straight-through gradient. What the
    'binary' deploy scheme stores (sign(w) >= 0 is +1)."""

    def __init__(self, bn=None):
        self.bits = 1
        self.bn = bn

    def forward(self, w):
        f = self._fold(w)
        wf = w * f if f is not None else w
        rows = wf.reshape(len(wf), -1)
        alpha = np.abs(rows).mean(axis=1, keepdims=True)
        q = (np.where(rows >= 0, 1.0, -1.0) * alpha).reshape(w.shape).astype(np.float32)
        return (q / f).astype(np.float32) if f is not None else q


def _resolve(model, path: str):
    """(parent, key, module) for a dotted module path."""
    parent, key = None, None
    m = model
    for part in path.split(".") if path else []:
        parent, key = m, part
        m = m._modules[part]
    return parent, key, m


def _insert(parent, key: str, module, name: str, before: bool = False) -> None:
    """`module` right after (or before) parent.<key>: a sibling '<key>_<name>' in a Sequential,
    else the two wrapped in a Sequential ('module' and '<name>') in place of parent.<key>."""
    if isinstance(parent, nn.Sequential):
        items = []
        for k, v in parent._modules.items():
            pair = [(k, v), (f"{k}_{name}", module)] if k == key else [(k, v)]
            items += pair[::-1] if before else pair
        parent._modules.clear()
        parent._modules.update(items)
    else:
        pair = [("module", parent._modules[key]), (name, module)]
        setattr(parent, key, nn.Sequential(OrderedDict(pair[::-1] if before else pair)))


def _prepend(seq, name: str, fq: FakeQuantize) -> None:
    items = [(name, fq)] + list(seq._modules.items())
    seq._modules.clear()
    seq._modules.update(items)


def prepare_qat(model, input_shape=(1, 3, 32, 32), weight_bits: int = 8, activations: bool = True,
                binary_activations: bool | str = False) -> Module:
    """Insert fake quantization where the int8-full Engine quantizes (module docstring) and
    parametrize every conv / linear weight; modifies ``model`` in place and returns it.

    weight_bits: 8 (int8-full / int8-weight); 4 with activations (int4-full: 4-bit weights in the
    layers of ``low_bit_layers``, 8-bit in the first, the last and depthwise ones); 4 or 2 without
    (int4-weight / int2-weight, weight-only); or 1 (scheme 'binary': sign weights with alpha =
    mean|w| per channel, the first and last conv / linear layers kept at 8 bits; weight-only too).
    activations: fake-quantize activations too (int8-full / int4-full); False trains weights only.
    binary_activations: with weight_bits=1, binarize activations too. True: where a binarized
    conv reads an activation of its own (a ReLU / ReLU6 / hard-swish module whose output only that
    conv reads), that module becomes ``nn.BinarySign`` (sign, clipped straight-through
    estimator); convs reading a residual stream, a pool or a shared activation keep real-valued
    inputs. 'all': every binarized conv of groups 1 reads signs, as in the survey's binarized
    networks (weights and activations binary): where the input is not its own activation an
    ``nn.BinarySign`` goes in front of the conv (a sibling '<conv>_sign' in its Sequential), and
    the other readers, e.g. a residual shortcut, keep the real value (XNOR-Net / Bi-Real Net's
    arrangement); every sign then has a learned per-channel threshold (``BinarySign(C)``, set
    from the first training batch), without which the sign of a ReLU's output is always +1.
    Scheme 'binary' deploys each (sign, conv) pair as the runtime's XNOR-popcount conv. The first
    and last layers and depthwise convs keep real-valued inputs either way."""

    check_module("model", model)
    input_shape = check_shape("input_shape", input_shape, 4)
    weight_bits = check_int("weight_bits", weight_bits, 1, 8)
    if weight_bits not in (1, 2, 4, 8):
        raise ValueError(f"weight_bits: expected 8, 4, 2 or 1 (the deployable weight forms), got {weight_bits}")
    activations = check_bool("activations", activations)
    if isinstance(binary_activations, np.bool_):
        binary_activations = bool(binary_activations)
    binary_activations = check_choice("binary_activations", binary_activations, (False, True, "all"))
    if binary_activations and weight_bits != 1:
        raise ValueError(f"binary_activations={binary_activations!r}: needs binary weights (weight_bits=1), "
                         f"got weight_bits={weight_bits}")
    if weight_bits < 4 and activations:
        raise ValueError(f"weight_bits={weight_bits} with activations=True: 2-bit and binary weights deploy "
                         "with f32 compute (scheme 'int2-weight' / 'binary'), so train them with "
                         "activations=False")
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: prepare_qat needs a Sequential model (every zoo model is one), got "
                        f"{type(model).__name__}")
    if _fake_quantizers(model) or _fake_quantized_layers(model):
        raise ValueError("model: already prepared for quantization-aware training")
    try:
        g0 = fold_batchnorm(trace(model, input_shape))
    except NotImplementedError as e:
        raise ValueError(str(e)) from None
    # weights: every conv / linear, folded with the BatchNorm a conv feeds
    folded = {n.name.split("+")[0]: n.name.split("+")[1] for n in g0.nodes if n.op == "conv2d" and "+" in n.name}
    layers = [n for n in g0.nodes if n.op in ("conv2d", "linear")]
    four = low_bit_layers(g0) if weight_bits == 4 and activations else None
    for i, n in enumerate(layers):
        layer_path = n.name.split("+")[0]
        layer = _resolve(model, layer_path)[2]
        bn = _resolve(model, folded[layer_path])[2] if layer_path in folded else None
        if is_parametrized(layer, "weight"):
            raise ValueError(f"model: layer '{layer_path}' already has a weight parametrization")
        if weight_bits == 1:   # binary networks keep the first and last layers at 8 bits
            p = FakeQuantWeight(8, bn) if i in (0, len(layers) - 1) else BinaryWeight(bn)
        elif four is not None:   # int4-full
            p = FakeQuantWeight(4 if layer_path in four else 8, bn)
        else:
            p = FakeQuantWeight(weight_bits, bn)
        register_parametrization(layer, "weight", p)
    if binary_activations:
        # 'all': learned per-channel thresholds, which the signs of a ReLU's output need; in the
        # model's mode, so that an eval-mode forward does not set them
        def sign(conv):
            s = nn.BinarySign(conv.params["weight"].shape[1] if binary_activations == "all" else None)
            return s.train(model.training)
        own = binary_activation_points(g0)
        for act, conv in own:
            parent, key, _ = _resolve(model, act.name)
            parent._modules[key] = sign(conv)
        if binary_activations == "all":   # a sign on the conv's own input; the other readers keep the value
            paired = {conv.name for _, conv in own}
            for conv in binary_conv_layers(g0):
                if conv.name not in paired:
                    parent, key, _ = _resolve(model, conv.name.split("+")[0])
                    _insert(parent, key, sign(conv), "sign", before=True)
    if not activations:
        return model
    # activations: the points the lowering quantizes, resolved before any module moves
    after, sums, input_point = [], [], False
    for t in hooks.quantize_points(g0):
        node = g0.producer(t)
        if node is None:
            input_point = True
        elif node.op == "add":
            sums.append(_resolve(model, node.name[:-len(".add")] if node.name != "add" else "")[2])
        elif node.op == "channel_scale":  # a squeeze-excitation's output: after the whole block
            after.append(_resolve(model, node.name[:-len(".scale")] if node.name != "scale" else "")[:2])
        else:
            after.append(_resolve(model, node.name.split("+")[-1])[:2])
    for parent, key in after:
        _insert(parent, key, FakeQuantize(), "fake_quant")
    for block in sums:
        act = block.activation
        if isinstance(act, nn.Sequential) and "fake_quant" in act._modules:
            _prepend(act, "sum_fake_quant", FakeQuantize())
        else:
            block.activation = nn.Sequential(OrderedDict(
                [("sum_fake_quant", FakeQuantize())] + ([("module", act)] if act is not None else [])))
    if input_point:
        _prepend(model, "input_fake_quant", FakeQuantize())
    return model


def low_bit_layers(graph) -> set:
    """The layers (paths: node names up to the first '+') that int4-full gives 4-bit weights:
    every conv / linear but the first (it sees the raw input), the last (it writes the logits) and
    depthwise convs (few weights; an int32 form in the runtime). prepare_qat(weight_bits=4,
    activations=True) fake-quantizes exactly these at 4 bits and the others at 8."""
    layers = [n for n in graph.nodes if n.op in ("conv2d", "linear")]
    return {n.name.split("+")[0] for n in layers[1:-1]
            if not (n.op == "conv2d" and int(n.attrs["groups"]) > 1 and n.params["weight"].shape[1] == 1)}


def binary_conv_layers(graph) -> list:
    """The conv nodes that can run as XNOR convs: binarized (not the first or last conv / linear
    layer) and groups 1."""
    layers = [n for n in graph.nodes if n.op in ("conv2d", "linear")]
    return [n for n in layers[1:-1] if n.op == "conv2d" and int(n.attrs["groups"]) == 1]


def binary_activation_points(graph) -> list:
    """[(activation node, conv node)]: the binary_conv_layers whose input is an activation that
    nothing else reads. prepare_qat makes those activations signs; the 'binary' lowering fuses
    each (sign, conv) pair into one XNOR conv."""
    readers: dict = {}
    for n in graph.nodes:
        for t in list(n.inputs) + ([n.attrs["residual"]] if n.attrs.get("residual") is not None else []):
            readers.setdefault(t, []).append(n)
    out = []
    for n in binary_conv_layers(graph):
        p = graph.producer(n.inputs[0])
        if p is not None and p.op in ("relu", "relu6", "hardswish", "sign") and readers.get(p.output) == [n]:
            out.append((p, n))
    return out


def _fake_quantizers(model) -> list:
    return [m for m in model.modules() if isinstance(m, FakeQuantize)]


def _fake_quantized_layers(model) -> list:
    """The layers whose weight goes through a FakeQuantWeight."""
    return [m for m in model.modules() if is_parametrized(m, "weight")
            and any(isinstance(p, FakeQuantWeight) for p in m._parametrizations["weight"].items)]


def convert(model) -> Module:
    """The end of QAT, in place: observers stop, BatchNorm statistics freeze and every fake-quantized
    weight becomes a plain Parameter holding its fake-quantized value. ``deploy.compile(model,
    scheme='int8-full')`` then lowers with the learned scales (no calibration data needed); after
    weight-only QAT at 4 / 2 / 1 bits, scheme 'int4-weight' / 'int2-weight' / 'binary' stores
    exactly those weights."""
    check_module("model", model)
    fqs = _fake_quantizers(model)
    weights = _fake_quantized_layers(model)
    if not fqs and not weights:
        raise ValueError("model: not prepared for quantization-aware training (run quant.prepare_qat first)")
    missing = [m._short_name() for m in fqs if m.qparams() is None]
    if missing:
        raise ValueError(f"model: {len(missing)} fake quantizer(s) never observed a value (train the model "
                         "before convert)")
    for m in fqs:
        m.observer_enabled = False
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.stats_frozen = True
    for m in weights:
        remove_parametrizations(m, "weight")
    return model


class _AtStep(Callback):
    """Acts once, when ``at_step`` training steps of this fit have run (0: before the first)."""

    def __init__(self, at_step: int):
        self.at_step = check_int("at_step", at_step, 0)
        self.steps = 0
        self.model = None

    def on_train_begin(self, model, optimizer, total_steps: int) -> None:
        self.model = model
        if self.steps >= self.at_step:
            self.apply(model)

    def on_step_end(self, batch, loss, logits) -> None:
        self.steps += 1
        if self.steps == self.at_step:
            self.apply(self.model)

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = check_int("steps", state["steps"], 0)


class FreezeObservers(_AtStep):
    """From step ``at_step`` on, the fake quantizers keep their scales (observers stop)."""

    def apply(self, model) -> None:
        for m in _fake_quantizers(model):
            m.observer_enabled = False


class FreezeBatchNorm(_AtStep):
    """From step ``at_step`` on, every BatchNorm uses and keeps its running statistics, so the
    folded, fake-quantized conv weights are the deployed ones."""

    def apply(self, model) -> None:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.stats_frozen = True

"""Export a model to ONNX, in fp32 or as an int8 QDQ model that onnxruntime runs with its integer
kernels.

    edgeopt.deploy.export_onnx(model, "model.onnx")                                 # fp32
    edgeopt.deploy.export_onnx(model, "model_int8.onnx", scheme="int8", calib=train)

The ONNX graph is written from the same traced and fused Graph the runtime compiler reads, so
both agree on what the model computes: BatchNorm is folded into the Conv before it, a fused
activation becomes Relu / Clip(0, 6) / HardSwish after the Conv (Gemm), a fused residual an Add.

Input convention. The exported model takes exactly what ``model.forward`` and ``Engine.run``
take: float32 NCHW images already scaled to [0, 1] and normalized with the training statistics
``model.input_norm`` (``evaluate`` does this for a model and an Engine alike). The normalization
is *not* part of the ONNX graph, so the exported model, the edgeopt model and its Engine give the
same logits for the same array. It is recorded in the model's metadata_props
(``edgeopt.input_norm`` as JSON {"mean": [...], "std": [...]}, absent when the model has none)
so a deployment can reproduce it: x = (pixels / 255 - mean) / std per channel.

int8 (QDQ). Every activation is quantized u8 asymmetric per tensor,
  q = clip(round(x / S) + Z, 0, 255),  x' = (q - Z) * S,
with the (S, Z) of edgeopt's int8-full Engine for the same model, calib and observer: the export
asks the int8-full lowering (deploy/lower/int8_full.py, ``QGraph.points``) rather than
calibrating on its own, so it carries the Engine's scales exactly, including a scale the lowering
widened and the scales a quantization-aware-trained model learned. With calibration that is
S = (max - min) / 255, Z = round(-min / S) (the range widened to contain 0, so 0 is exact) over
the first 256 samples of ``calib``: a Dataset or a uint8 image array (preprocessed like
``evaluate`` does, with ``model.input_norm``), or a float array of model inputs taken as they are.
Weights are s8 symmetric per output channel (axis 0), s_c = max|w_c| / 127, q in [-127, 127];
biases int32 with scale S_x * s_c and zero point 0, which is what integer Conv/Gemm kernels need
(s_c is raised to |b_c| / (S_x * 2^30) where that is larger, so the int32 bias never saturates).

Where the QuantizeLinear -> DequantizeLinear pairs sit ("quantization points"):
  * the graph input and the output of every fused operator, the logits included: the Engine
    requantizes the last layer's int32 accumulator to u8 with its own output scale and dequantizes
    that, so the ONNX logits are on the same grid (one logit LSB = that scale, the one of the
    DequantizeLinear that writes "logits") and the two compare in whole steps;
  * inside a fused conv/linear, the raw Conv output when a residual Add or a hard-swish follows,
    and the sum before a hard-swish, so each Conv, Add and Mul sees quantized inputs and a
    quantized output, the pattern onnxruntime rewrites to QLinearConv / QLinearAdd / QLinearMul.
    Relu and Clip(0, 6) directly before a QuantizeLinear need no point of their own: the u8 clamp
    does their work (onnxruntime drops them);
  * MaxPool and Flatten reuse their input's parameters (re-quantizing is then the identity).

How close onnxruntime comes to the Engine (tests/deploy/test_onnx_export.py): with its default
graph optimizations onnxruntime fuses the QDQ pairs into QLinearConv / QGemm / QLinearAdd /
QLinearGlobalAveragePool / QLinearMul, and the Engine computes exactly their arithmetic (float32
factors in the same order, the same roundings: edgeopt.quant.requant_scale, add_scales; activation
tables in float32 as DequantizeLinear -> f -> QuantizeLinear), so its logits equal the Engine's bit
for bit (measured: resnet20, mobilenet_v2 and mobilenet_v3_small, width 0.25). With optimizations
off it runs each op in float32 on dequantized values; float rounding then moves values near a
rounding boundary by a step, which the mobilenets' depthwise layers amplify (97-98 % of the logits
within one step of the Engine's, resnet20 100 %).
"""
from __future__ import annotations

import json
import os

import numpy as np

from .. import quant
from .._check import check_bool, check_choice, check_int, check_path
from ..nn.module import check_module
from .._io import atomic_write_bytes
from .._version import __version__
from ..graph import Graph, fuse, trace
from .lower import CALIB_SAMPLES
from .lower.int8_full import quantize_graph

__all__ = ["export_onnx"]

SCHEMES = ("fp32", "int8")
CLAMP_ACTIVATIONS = ("none", "relu", "relu6")    # absorbed by a following u8 QuantizeLinear
SUPPORTED_OPS = ("conv2d", "linear", "batchnorm2d", "relu", "relu6", "hardswish", "hardsigmoid", "sigmoid",
                 "maxpool2d", "avgpool2d", "global_avgpool2d", "flatten", "add", "channel_scale")
_SAME_QPARAMS = ("maxpool2d", "flatten")         # order-preserving, value-preserving ops


def _require_onnx():
    try:
        import onnx
        import onnx.checker  # noqa: F401
        import onnx.helper  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
    except ImportError as e:
        raise ImportError("edgeopt.deploy.export_onnx needs the 'onnx' package: pip install onnx "
                          "(or pip install edgeopt[onnx])") from e
    return onnx


# --------------------------------------------------------------------------- argument checks

def _check_scheme(scheme) -> str:
    if scheme == "int8-full":  # edgeopt's name for the same thing
        scheme = "int8"
    if scheme not in SCHEMES:
        hint = (" (fp16 and int8-weight are edgeopt runtime schemes without an ONNX export)"
                if scheme in ("fp16", "int8-weight") else "")
        raise ValueError(f"scheme: expected one of {SCHEMES} ('int8-full' is an alias of 'int8'), "
                         f"got {scheme!r}{hint}")
    return scheme


def _check_opset(opset, onnx) -> int:
    return check_int("opset", opset, 13, onnx.defs.onnx_opset_version())  # 13: per-channel DequantizeLinear


def _check_path(path) -> str:
    path = check_path("path", path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"path: expected a file name, got the folder {path!r}")
    return path


# --------------------------------------------------------------------------- calibration

def _internal_points(n) -> tuple:
    """Quantization points inside a fused conv/linear node: 'conv' (raw Conv/Gemm output) when a
    residual add or a non-clamp activation follows it, 'sum' (after the add) before a non-clamp
    activation."""
    if n.op not in ("conv2d", "linear"):
        return ()
    act, res = n.attrs.get("activation", "none"), n.attrs.get("residual")
    pts = ()
    if res is not None or act not in CLAMP_ACTIVATIONS:
        pts += ("conv",)
    if res is not None and act not in CLAMP_ACTIVATIONS:
        pts += ("sum",)
    return pts


def _key(p) -> str:
    return f"t{p[0]}.{p[1]}" if isinstance(p, tuple) else f"t{p}"


# --------------------------------------------------------------------------- graph building

class _Builder:
    """Writes ONNX nodes for a fused Graph. `value[t]` is the ONNX name that holds graph tensor t as
    float (after its DequantizeLinear in a QDQ model)."""

    def __init__(self, onnx, graph: Graph, qparams, name: str, weights=None):
        self.onnx, self.h, self.g, self.q = onnx, onnx.helper, graph, qparams
        self.w = weights   # conv / linear output id -> the int8-full lowering's (q, s_w, bias, bias scale)
        self.name = name
        self.nodes, self.inits, self.value = [], [], {graph.input: "input"}
        self.pkey = {}  # tensor id -> the point whose scale / zero point initializers it uses

    # helpers
    def const(self, name, array):
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, output, name, **attrs):
        self.nodes.append(self.h.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def qdq(self, tensor: str, key: str, share_with: str = None) -> str:
        """QuantizeLinear -> DequantizeLinear of ONNX value `tensor` at point `key` (or with the
        parameters of point `share_with`)."""
        src = share_with or key
        s, z = f"{src}.scale", f"{src}.zero_point"
        if share_with is None:
            if key not in self.q:   # the exporter's points and the lowering's disagree: a bug
                raise RuntimeError(f"export_onnx: the int8-full lowering has no scale for point {key}")
            self.const(s, np.float32(self.q[key][0]))
            self.const(z, np.uint8(self.q[key][1]))
        self.node("QuantizeLinear", [tensor, s, z], f"{key}.q", f"{key}/quantize")
        return self.node("DequantizeLinear", [f"{key}.q", s, z], f"{key}.dq", f"{key}/dequantize")

    def weight(self, key, w, b, t):
        """Initializers for a weight and bias; in a QDQ model, DequantizeLinear of the s8 weight
        and the int32 bias (scale = input scale * weight scale): the codes of the int8-full
        lowering for the layer writing tensor t (quant.quantize_weight_bias there)."""
        if self.q is None:
            return self.const(f"{key}.weight", w), (None if b is None else self.const(f"{key}.bias", b))
        if t not in self.w:   # the exporter's layers and the lowering's disagree: a bug
            raise RuntimeError(f"export_onnx: the int8-full lowering has no weights for tensor %{t}")
        wq, ws, bq, bs = self.w[t]
        self.const(f"{key}.weight.q", wq)
        self.const(f"{key}.weight.scale", ws)
        self.const(f"{key}.weight.zero_point", np.zeros(len(ws), np.int8))
        wd = self.node("DequantizeLinear", [f"{key}.weight.q", f"{key}.weight.scale", f"{key}.weight.zero_point"],
                       f"{key}.weight.dq", f"{key}/weight_dequantize", axis=0)
        if b is None:
            return wd, None
        self.const(f"{key}.bias.q", bq)
        self.const(f"{key}.bias.scale", bs)
        self.const(f"{key}.bias.zero_point", np.zeros(len(bs), np.int32))
        bd = self.node("DequantizeLinear", [f"{key}.bias.q", f"{key}.bias.scale", f"{key}.bias.zero_point"],
                       f"{key}.bias.dq", f"{key}/bias_dequantize", axis=0)
        return wd, bd

    def act(self, op, x, out, name):
        if op == "relu":
            return self.node("Relu", [x], out, name)
        if op == "relu6":
            lo, hi = self.const(f"{out}.min", np.float32(0)), self.const(f"{out}.max", np.float32(6))
            return self.node("Clip", [x, lo, hi], out, name)
        if op == "hardswish":
            return self.node("HardSwish", [x], out, name)
        if op == "hardsigmoid":  # relu6(x + 3) / 6 = max(0, min(1, x/6 + 1/2))
            return self.node("HardSigmoid", [x], out, name, alpha=1.0 / 6.0, beta=0.5)
        if op == "sigmoid":
            return self.node("Sigmoid", [x], out, name)
        raise AssertionError(op)

    def build_node(self, n):
        t = f"t{n.output}"
        x = [self.value[i] for i in n.inputs]
        a, p, label = n.attrs, n.params, n.name or t
        quant = self.q is not None
        if n.op in ("conv2d", "linear"):
            w, b = self.weight(t, p["weight"], p.get("bias"), n.output)
            ins = [x[0], w] + ([b] if b is not None else [])
            if n.op == "conv2d":
                w_shape = p["weight"].shape
                y = self.node("Conv", ins, f"{t}.conv", f"{label}/conv", kernel_shape=list(w_shape[2:]),
                              strides=list(a["stride"]), pads=list(a["padding"]) * 2, group=int(a["groups"]))
            else:
                if len(self.g.shapes[n.inputs[0]]) != 2:
                    raise NotImplementedError(f"export_onnx: linear layer {n.name!r} takes a "
                                              f"{len(self.g.shapes[n.inputs[0]])}-d input; only 2-d (N, features) "
                                              "inputs export (add a Flatten before it)")
                y = self.node("Gemm", ins, f"{t}.conv", f"{label}/gemm", transB=1)
            pts, act, res = _internal_points(n), a.get("activation", "none"), a.get("residual")
            if quant and "conv" in pts:
                y = self.qdq(y, f"{t}.conv")
            if res is not None:
                y = self.node("Add", [y, self.value[res]], f"{t}.sum", f"{label}/add")
                if quant and "sum" in pts:
                    y = self.qdq(y, f"{t}.sum")
            if act != "none":
                y = self.act(act, y, f"{t}.act", f"{label}/{act}")
            return y
        if n.op == "batchnorm2d":
            ins = [x[0]] + [self.const(f"{t}.{k}", p[k]) for k in ("weight", "bias", "running_mean", "running_var")]
            return self.node("BatchNormalization", ins, t, label, epsilon=float(a["eps"]))
        if n.op in ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid"):
            return self.act(n.op, x[0], t, label)
        if n.op in ("maxpool2d", "avgpool2d"):
            attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=list(a["padding"]) * 2)
            if n.op == "avgpool2d":
                attrs["count_include_pad"] = int(bool(a["count_include_pad"]))
            return self.node("MaxPool" if n.op == "maxpool2d" else "AveragePool", [x[0]], t, label, **attrs)
        if n.op == "global_avgpool2d":
            return self.node("GlobalAveragePool", [x[0]], t, label)
        if n.op == "flatten":
            return self.node("Flatten", [x[0]], t, label, axis=1)
        if n.op == "add":
            return self.node("Add", x, t, label)
        if n.op == "channel_scale":  # x (N, C, H, W) * s (N, C, 1, 1), broadcast
            return self.node("Mul", x, t, label)
        raise NotImplementedError(f"export_onnx: node {n.name!r} has op {n.op!r}, which has no ONNX "
                                  f"export; supported ops: {', '.join(SUPPORTED_OPS)}")

    def build(self, opset: int, dynamic_batch: bool, metadata: dict):
        onnx, h, g = self.onnx, self.h, self.g
        quant = self.q is not None
        if quant:
            self.pkey[g.input] = f"t{g.input}"
            self.value[g.input] = self.qdq("input", f"t{g.input}")
        for n in g.nodes:
            self.pkey.setdefault(n.output, f"t{n.output}")
            y = self.build_node(n)
            if quant and n.op in _SAME_QPARAMS:
                self.pkey[n.output] = self.pkey[n.inputs[0]]
                self.value[n.output] = self.qdq(y, f"t{n.output}", share_with=self.pkey[n.output])
            elif quant:
                self.value[n.output] = self.qdq(y, f"t{n.output}")
            else:
                self.value[n.output] = y
        # the output value is renamed "logits"
        out = self.value[g.output]
        producer = [nd for nd in self.nodes if out in nd.output]
        if producer and not any(out in nd.input for nd in self.nodes):
            producer[0].output[0] = "logits"
        else:  # the output is the input itself, or also feeds another node
            self.node("Identity", [out], "logits", "output")
        batch = "batch" if dynamic_batch else g.input_shape[0]
        x_info = h.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [batch] + list(g.input_shape[1:]))
        y_info = h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [batch] + list(g.shapes[g.output][1:]))
        graph = h.make_graph(self.nodes, self.name, [x_info], [y_info], initializer=self.inits)
        opsets = [h.make_opsetid("", opset)]
        model = h.make_model(graph, opset_imports=opsets, producer_name="edgeopt",
                             ir_version=h.find_min_ir_version_for(opsets))
        model.producer_version = __version__
        model.doc_string = ("Input: float32 NCHW scaled to [0, 1] and normalized per channel with "
                            "metadata 'edgeopt.input_norm' (when present); output: logits.")
        h.set_model_props(model, metadata)
        return model


def export_onnx(model, path, scheme: str = "fp32", input_shape=(1, 3, 32, 32), calib=None,
                opset: int = 17, dynamic_batch: bool = True, observer: str = "minmax",
                rounding: str | None = None) -> str:
    """Write `model` (an edgeopt.nn.Module) to `path` as ONNX; returns the path.

    scheme: "fp32", or "int8" (alias "int8-full"): a QDQ model with the scales and zero points of
    ``deploy.compile(model, "int8-full", calib=calib, observer=observer)``, the logits included:
    u8 per-tensor activations calibrated on the first 256 samples of `calib` (a Dataset or a uint8
    image array, preprocessed with ``model.input_norm`` like ``evaluate`` does, or a float array of
    model inputs as they are) and s8 per-channel weights (edgeopt.quant, as the int8 Engines).
    ``observer`` picks the activation ranges as in ``deploy.compile`` ('minmax', 'moving_average',
    'percentile', 'mse', 'kl', or 'auto': the per-tensor choice, made on the integer Engine, that
    ``deploy.compile`` makes for the same model and calib); ``rounding`` the weights' codes as in
    ``deploy.compile`` ('nearest' or 'gptq'; default 'gptq' with observer='auto', else 'nearest'). A model converted after quantization-aware training (quant.convert)
    is exported with the scales it learned, the ones its int8-full Engine uses; no calib needed.
    onnxruntime's logits are then on that Engine's output grid (see "int8 (QDQ)" above for how
    close they come).
    input_shape: (N, C, H, W) the model is traced at; H and W are fixed in the ONNX model, the batch
    dimension is symbolic ("batch") when dynamic_batch, else N.
    The model's input is named "input" and takes what ``model.forward`` takes (normalized float32;
    the normalization is recorded in metadata_props, not applied); its output is named "logits".
    The file is checked with onnx.checker and written atomically (temp file + rename).
    """
    onnx = _require_onnx()
    check_module("model", model)
    scheme = _check_scheme(scheme)
    opset = _check_opset(opset, onnx)
    path = _check_path(path)
    dynamic_batch = check_bool("dynamic_batch", dynamic_batch)
    graph = fuse(trace(model, input_shape))
    for n in graph.nodes:
        if n.op not in SUPPORTED_OPS:
            raise NotImplementedError(f"export_onnx: node {n.name!r} has op {n.op!r}, which has no ONNX "
                                      f"export; supported ops: {', '.join(SUPPORTED_OPS)}")
        if opset < 14 and (n.op == "hardswish" or n.attrs.get("activation") == "hardswish"):
            raise ValueError(f"opset: the model uses hard-swish ({n.name!r}), which ONNX has from opset 14; "
                             f"got opset={opset}")
    qparams = weights = None
    check_choice("observer", observer, quant.OBSERVER_CHOICES)
    if rounding is not None:
        check_choice("rounding", rounding, quant.ROUNDINGS)
    if scheme == "int8":
        if calib is not None:
            quant.check_calib(calib, graph.input_shape)
        # the Engine's own (scale, zero point) of every point: learned (QAT) or calibrated
        qg = quantize_graph(model, calib, graph.input_shape, CALIB_SAMPLES, observer, rounding=rounding)
        qparams = {_key(p): (np.float32(s), np.uint8(z)) for p, (s, z) in qg.points.items()}
        weights = qg.weights
    elif calib is not None:
        raise ValueError("calib: only scheme 'int8' uses calibration data; got calib with scheme 'fp32'")
    elif rounding is not None:
        raise ValueError(f"rounding={rounding!r}: only scheme 'int8' has integer weight codes; got scheme 'fp32'")
    norm = getattr(model, "input_norm", None)
    metadata = {"edgeopt.scheme": scheme,
                "edgeopt.input_layout": "NCHW float32, normalized (see edgeopt.input_norm)"}
    if norm is not None:
        metadata["edgeopt.input_norm"] = json.dumps({"mean": [float(v) for v in norm["mean"]],
                                                     "std": [float(v) for v in norm["std"]]})
    arch = getattr(model, "arch", None) or type(model).__name__
    proto = _Builder(onnx, graph, qparams, str(arch), weights).build(opset, bool(dynamic_batch), metadata)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:  # an exporter bug, not a user error: say so
        raise RuntimeError(f"export_onnx: the generated model fails onnx.checker: {e}") from e
    atomic_write_bytes(path, proto.SerializeToString())
    return path

"""``compile(model, scheme)``: trace -> fuse -> weights in deployed form -> .edgeopt bytes -> Engine.

The Engine is built by loading the serialized bytes (the same path as ``load``), so what runs is
exactly what a saved file holds. The whole network runs in C++; no Python per layer.

Schemes (the paper's codes in brackets):
  fp32         f32 weights                                                            [NQ]
  fp16         weights stored as IEEE fp16, widened to f32 while packing; f32 compute [F16]
  int8-weight  weights int8, symmetric, one scale per output channel (scale = max|w| / 127,
               q = round-half-even(w / scale) in [-127, 127]); f32 compute           [BLQ]
  int8-full    int8 weights and activations from calibration data (deploy/quantize.py) [FIQ]
Biases and unfolded BatchNorm affines stay f32 in every scheme.
"""
from __future__ import annotations

import importlib

import numpy as np

from .._check import check_array, check_choice, check_module, check_shape
from .engine import Engine
from .format import ACTIVATION, ModelBuilder, OpType, TensorInfo
from ..graph import Graph, batchnorm_affine, fuse, trace

__all__ = ["compile", "SCHEMES", "lower", "deploy_weight", "build_metadata"]

# Schemes lowered here, and schemes lowered by another module: name -> (module, function). The
# function is called as fn(graph, model=..., calib=..., input_shape=...) and returns
# (ModelBuilder, output tensor id); ``builder.metadata`` (a dict) is merged into the file's.
_LOCAL_SCHEMES = ("fp32", "fp16", "int8-weight")
_PLUGGED_SCHEMES = {
    "int8-full": ("edgeopt.deploy.quantize", "lower_int8_full"),
}
SCHEMES = _LOCAL_SCHEMES + tuple(_PLUGGED_SCHEMES)


def compile(model, scheme: str = "fp32", input_shape=(1, 3, 32, 32), calib=None, sparse="auto") -> Engine:
    """Compile `model` (an edgeopt.nn.Module) for the C++ runtime and return the loaded Engine.

    input_shape: (N, C, H, W) used to trace; the Engine then runs any batch size at that C, H, W.
    calib: calibration data for int8-full (an edgeopt Dataset or an array of inputs).
    sparse: fp32 only (deploy/sparse.py): "auto" runs 1x1 convs and linear layers with >= 70 %
    zero weights as sparse ops, True every such layer, False none."""
    check_module("model", model)
    check_choice("scheme", scheme, SCHEMES)
    input_shape = check_shape("input_shape", input_shape, 4)
    _check_calib(calib, input_shape)
    check_choice("sparse", sparse, ("auto", True, False))
    if sparse is True and scheme != "fp32":
        raise ValueError(f"sparse=True: scheme {scheme!r} has no sparse op (fp32 only); use sparse='auto' or False")
    try:
        graph = fuse(trace(model, input_shape))
    except NotImplementedError as e:
        raise ValueError(str(e)) from None
    if scheme == "fp32" and sparse is not False:
        from .sparse import lower_sparse
        builder, output = lower_sparse(graph, sparse)
    elif scheme in _LOCAL_SCHEMES:
        builder, output = lower(graph, scheme)
    else:
        mod_name, fn_name = _PLUGGED_SCHEMES[scheme]
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as e:
            raise ValueError(f"scheme {scheme!r} is not available in this build ({e})") from None
        builder, output = getattr(mod, fn_name)(graph, model=model, calib=calib, input_shape=input_shape)
    meta = build_metadata(model, scheme, graph)
    meta.update(getattr(builder, "metadata", None) or {})
    return Engine(builder.to_bytes(output, meta))


def _check_calib(calib, input_shape: tuple) -> None:
    """calib, when given, is a Dataset or an array of samples shaped like the traced input, so a
    wrong channel count is reported against calib rather than as a conv weight mismatch later."""
    from ..data import Dataset

    if calib is None:
        return
    if isinstance(calib, Dataset):
        got = calib.shape
    else:
        got = check_array("calib", calib, "biuf").shape[1:]
    if tuple(got) != input_shape[1:]:
        raise ValueError(f"calib: expected samples of shape {input_shape[1:]} (input_shape without the batch), "
                         f"got samples of shape {tuple(got)}")


def build_metadata(model, scheme: str, graph: Graph) -> dict:
    from .. import __version__

    out_shape = graph.shapes[graph.output]
    norm = getattr(model, "input_norm", None)
    if norm is not None:
        norm = {"mean": [float(v) for v in norm["mean"]], "std": [float(v) for v in norm["std"]]}
    return {
        "format": "edgeopt",
        "edgeopt_version": __version__,
        "scheme": scheme,
        "arch": getattr(model, "arch", type(model).__name__),
        "num_classes": int(getattr(model, "num_classes", out_shape[1])),
        "input_shape": [int(s) for s in graph.input_shape[1:]],
        "input_norm": norm,
        "input_norm_applied": False,  # run() takes normalized input, like model.forward
    }


# ---------------------------------------------------------------------------- weights
def deploy_weight(builder: ModelBuilder, w: np.ndarray, scheme: str) -> dict:
    """Blob attrs for a conv / linear weight (rows = output channels) in the scheme's form:
    {'weight': ...} or, for int8-weight, {'weight': int8, 'weight_scale': f32 per row}."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if scheme == "fp32":
        return {"weight": builder.add_blob(w)}
    if scheme == "fp16":
        h = w.astype(np.float16)
        if not np.isfinite(h[np.isfinite(w)]).all():
            raise ValueError("fp16: a weight exceeds the fp16 range (|w| > 65504)")
        return {"weight": builder.add_blob(h)}
    if scheme == "int8-weight":
        q, scale = quantize_per_channel(w)
        return {"weight": builder.add_blob(q), "weight_scale": builder.add_blob(scale)}
    raise ValueError(f"scheme: no weight form for {scheme!r}")


def quantize_per_channel(w: np.ndarray):
    """Symmetric int8 per output channel (axis 0): scale = max|w| / 127 (1 for an all-zero row),
    q = clip(round(w / scale), -127, 127). Returns (q int8 like w, scale float32 (rows,))."""
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    amax = np.abs(rows).max(axis=1) if rows.size else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(rows / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def dequantize_per_channel(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (q.reshape(q.shape[0], -1).astype(np.float32) * scale[:, None]).reshape(q.shape)


# ---------------------------------------------------------------------------- graph
def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(t) for t in v)


def lower(graph: Graph, scheme: str = "fp32", builder: ModelBuilder | None = None, ids: dict | None = None):
    """Emit the fp32-compute ops of `graph` (weights in `scheme`'s form) into a ModelBuilder.
    Returns (builder, output tensor id). `ids` maps graph tensor ids to builder ids (filled in)."""
    if builder is None:
        builder = ModelBuilder(TensorInfo.of_shape(graph.input_shape))
    ids = {graph.input: builder.input} if ids is None else ids
    for node in graph.nodes:
        lower_node(builder, node, graph, ids, scheme)
    return builder, ids[graph.output]


def lower_node(builder: ModelBuilder, n, graph: Graph, ids: dict, scheme: str = "fp32") -> int:
    """One graph node as one runtime op (fp32 compute). Returns the builder tensor id."""
    out = TensorInfo.of_shape(graph.shapes[n.output])
    ins = [ids[i] for i in n.inputs]
    a, p = n.attrs, n.params
    if n.op in ("conv2d", "linear"):
        act = a.get("activation", "none")
        if act not in ("none", "relu", "relu6", "hardswish"):
            raise ValueError(f"deploy: layer '{n.name}': fused activation {act!r} is not supported")
        attrs = {"activation": ACTIVATION[act]}
        attrs.update(deploy_weight(builder, p["weight"], scheme))
        if p.get("bias") is not None:
            attrs["bias"] = builder.add_blob(np.ascontiguousarray(p["bias"], dtype=np.float32))
        if n.op == "conv2d":
            attrs.update(stride=_pair(a["stride"]), padding=_pair(a["padding"]), groups=int(a["groups"]))
            if a.get("residual") is not None:
                ins.append(ids[a["residual"]])
            typ = OpType.CONV2D
        else:
            if a.get("residual") is not None:
                raise ValueError(f"deploy: layer '{n.name}': a residual add on a linear layer is not supported")
            typ = OpType.LINEAR
    elif n.op == "batchnorm2d":
        scale, shift = batchnorm_affine(p, a["eps"])  # a BatchNorm with no conv to fold into
        attrs = {"scale": builder.add_blob(scale.astype(np.float32)),
                 "shift": builder.add_blob(shift.astype(np.float32))}
        typ = OpType.CHANNEL_AFFINE
    elif n.op in ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid"):
        typ, attrs = OpType.ACTIVATION, {"kind": ACTIVATION[n.op]}
    elif n.op in ("maxpool2d", "avgpool2d"):
        attrs = {"kernel": _pair(a["kernel"]), "stride": _pair(a["stride"]), "padding": _pair(a["padding"])}
        if n.op == "avgpool2d":
            attrs["count_include_pad"] = int(bool(a.get("count_include_pad", True)))
        typ = OpType.MAXPOOL2D if n.op == "maxpool2d" else OpType.AVGPOOL2D
    elif n.op == "global_avgpool2d":
        typ, attrs = OpType.GLOBAL_AVGPOOL2D, {}
    elif n.op == "flatten":
        typ, attrs = OpType.FLATTEN, {}
    elif n.op == "add":
        typ, attrs = OpType.ADD, {}
    elif n.op == "channel_scale":
        typ, attrs = OpType.CHANNEL_SCALE, {}
    else:
        raise ValueError(f"deploy: layer '{n.name}': op {n.op!r} has no runtime operator")
    tid = builder.add_op(typ, n.name, ins, out, attrs)
    ids[n.output] = tid
    return tid

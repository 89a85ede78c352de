"""The dense lowerings: every node of a fused graph as one fp32-compute runtime op, with conv /
linear weights stored as f32 (fp32, [NQ]), IEEE fp16 widened while packing (fp16, [F16]), or int8
with one float32 scale per output channel (int8-weight, [BLQ]: scale = max|w| / 127, q =
round-half-even(w / scale) in [-127, 127], by edgeopt.quant), or the same with 4- or 2-bit codes
(int4-weight: scale = max|w| / 7, q in [-7, 7]; int2-weight: max|w| / 1, q in [-1, 1]), or
binary (binary-weight: sign(w) with alpha = mean |w| per output channel), stored bit-packed and
widened while packing (the runtime keeps them packed). Biases and unfolded BatchNorm
affines stay f32. The sparse and int8-full lowerings reuse ``lower_node`` for the ops they keep
dense.
"""
from __future__ import annotations

import numpy as np

from ... import quant
from ...graph import Graph, batchnorm_affine
from ... import _core
from ..format import ACTIVATION, BlobType, ModelBuilder, OpType, TensorInfo

__all__ = ["lower", "lower_node", "deploy_weight", "LOWBIT"]

# scheme -> (bits, blob tag) of the bit-packed weight forms
LOWBIT = {"int4-weight": (4, BlobType.I4), "int2-weight": (2, BlobType.I2)}


def binary_form(w: np.ndarray) -> tuple:
    """XNOR-Net's binary weights: (alpha = mean |w| per output channel, float32; the rows' sign
    bits, bit 1 = +1 for w >= 0, packed LSB first per row as lowbit/lowbit.h lays them out)."""
    rows = np.ascontiguousarray(w, dtype=np.float32).reshape(len(w), -1)
    alpha = np.abs(rows).mean(axis=1).astype(np.float32)
    return alpha, _core.quant.quant_pack_codes(np.where(rows >= 0, 1, -1).astype(np.int8), 1).tobytes()


def deploy_weight(builder: ModelBuilder, w: np.ndarray, scheme: str, name: str = "weight", rounding=None) -> dict:
    """Blob attrs for a conv / linear weight (rows = output channels) in the scheme's form:
    {'weight': ...} or, for int8-weight, {'weight': int8, 'weight_scale': f32 per row}. The
    int8 scales are float32 as stored; quant quantizes with exactly those. ``rounding``: None
    (nearest), or fn(w, scale, bits) -> codes on the same grid (quant.GPTQRounding.layer)."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if scheme == "fp32":
        return {"weight": builder.add_blob(w)}
    if scheme == "fp16":
        h = w.astype(np.float16)
        if not np.isfinite(h[np.isfinite(w)]).all():
            raise ValueError(f"fp16: {name} exceeds the fp16 range (|w| > 65504)")
        return {"weight": builder.add_blob(h)}
    if scheme == "int8-weight":
        q, scale = quant.quantize_per_channel(w, axis=0, name=name, dtype=np.float32, rounding=rounding)
        return {"weight": builder.add_blob(q), "weight_scale": builder.add_blob(scale)}
    if scheme == "binary-weight":
        alpha, packed = binary_form(w)
        # an all-zero channel: the runtime wants scales > 0, and the smallest one keeps it zero
        alpha = np.where(alpha > 0, alpha, np.finfo(np.float32).tiny).astype(np.float32)
        return {"weight": builder.add_blob(type=BlobType.I1, dims=w.shape, data=packed),
                "weight_scale": builder.add_blob(alpha)}
    if scheme in LOWBIT:
        bits, tag = LOWBIT[scheme]
        q, scale = quant.quantize_per_channel(w, axis=0, bits=bits, name=name, dtype=np.float32, rounding=rounding)
        packed = _core.quant.quant_pack_codes(q.reshape(len(q), -1), bits)
        return {"weight": builder.add_blob(type=tag, dims=w.shape, data=packed.tobytes()),
                "weight_scale": builder.add_blob(scale)}
    raise ValueError(f"scheme: no weight form for {scheme!r}")


# ---------------------------------------------------------------------------- graph
def lower(graph: Graph, scheme="fp32", builder: ModelBuilder | None = None, ids: dict | None = None,
          rounding=None):
    """Emit the fp32-compute ops of `graph` (weights in `scheme`'s form, or per node: a dict
    {node name: scheme}) into a ModelBuilder. Returns (builder, output tensor id). `ids` maps graph
    tensor ids to builder ids (filled in). ``rounding``: None (nearest) or a quant.GPTQRounding
    for the quantized weight forms."""
    if builder is None:
        builder = ModelBuilder(TensorInfo.of_shape(graph.input_shape))
    ids = {graph.input: builder.input} if ids is None else ids
    for node in graph.nodes:
        lower_node(builder, node, graph, ids, scheme if isinstance(scheme, str) else scheme.get(node.name, "fp32"),
                   rounding)
    return builder, ids[graph.output]


def lower_b1_conv(builder: ModelBuilder, n, graph: Graph, ids: dict) -> int:
    """A binary conv reading a sign (node `n`'s input comes from a 'sign' node that only it reads)
    as the runtime's b1_conv2d on the sign's input, which binarizes it the same way (x >= 0, or
    x >= the sign's per-channel threshold, -> +1): y = alpha * XNOR-popcount(sign x, sign w) + bias, alpha = mean|w| per output channel of
    the BatchNorm-folded weight (what BinaryWeight trained). A fused residual add is the op's
    second input, added before the activation, as conv2d does; an activation the op cannot apply
    (hard-swish) runs as an op after it."""
    a, p = n.attrs, n.params
    w = p["weight"]
    alpha, bits = binary_form(w)
    sign = graph.producer(n.inputs[0])
    act = a.get("activation", "none")
    own_act = act if act in ("none", "relu", "relu6") else "none"
    attrs = {"weight": builder.add_blob(type=BlobType.BITPACKED_B1, dims=w.shape, data=alpha.astype("<f4").tobytes() + bits),
             "stride": a["stride"], "padding": a["padding"], "pad_value": 0, "activation": ACTIVATION[own_act]}
    if p.get("bias") is not None:
        attrs["bias"] = builder.add_blob(np.ascontiguousarray(p["bias"], dtype=np.float32))
    if sign.params.get("threshold") is not None:   # a learned per-channel threshold (nn.BinarySign)
        attrs["threshold"] = builder.add_blob(np.ascontiguousarray(sign.params["threshold"], dtype=np.float32))
    out = TensorInfo.of_shape(graph.shapes[n.output])
    ins = [ids[sign.inputs[0]]] + ([ids[a["residual"]]] if a.get("residual") is not None else [])
    tid = builder.add_op(OpType.B1_CONV2D, n.name, ins, out, attrs)
    if act != own_act:
        tid = builder.add_op(OpType.ACTIVATION, n.name + "." + act, [tid], out, {"kind": ACTIVATION[act]})
    ids[n.output] = tid
    return tid


def lower_node(builder: ModelBuilder, n, graph: Graph, ids: dict, scheme: str = "fp32", rounding=None) -> int:
    """One graph node as one runtime op (fp32 compute). Returns the builder tensor id."""
    if scheme == "fused-sign":   # folded into the b1 conv that reads it
        return -1
    if scheme == "b1":
        return lower_b1_conv(builder, n, graph, ids)
    out = TensorInfo.of_shape(graph.shapes[n.output])
    ins = [ids[i] for i in n.inputs]
    a, p = n.attrs, n.params
    if n.op in ("conv2d", "linear"):
        act = a.get("activation", "none")
        if act not in ("none", "relu", "relu6", "hardswish"):
            raise ValueError(f"deploy: layer '{n.name}': fused activation {act!r} is not supported")
        attrs = {"activation": ACTIVATION[act]}
        own = None if rounding is None else rounding.layer(n.output)
        attrs.update(deploy_weight(builder, p["weight"], scheme, f"{n.name}.weight", own))
        if p.get("bias") is not None:
            attrs["bias"] = builder.add_blob(np.ascontiguousarray(p["bias"], dtype=np.float32))
        if n.op == "conv2d":
            attrs.update(stride=a["stride"], padding=a["padding"], groups=int(a["groups"]))
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
    elif n.op == "sign":
        raise ValueError(f"deploy: layer '{n.name}': a binary activation runs only inside a binary conv "
                         f"(scheme 'binary', a conv that alone reads it)")
    elif n.op in ("maxpool2d", "avgpool2d"):
        attrs = {"kernel": a["kernel"], "stride": a["stride"], "padding": a["padding"]}
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

"""Lowerings: a fused graph (edgeopt.graph) to the runtime's ops, one module per weight form.

    scheme        module          paper code
    fp32          dense (+ sparse ops for pruned layers, sparse.py)   NQ
    fp16          dense           F16
    int8-weight   dense           BLQ
    int4-weight   dense           (4-bit weights, f32 compute)
    int2-weight   dense           (2-bit weights, f32 compute)
    binary        dense           (binary weights, alpha = mean|w| per channel; first and last
                                  conv / linear at int8-weight; f32 compute, or XNOR-popcount
                                  where activations are binary too)
    int8-full     int8_full       FIQ
    int4-full     int8_full       (FIQ with 4-bit weights: u8 activations, int32 accumulation; the
                                  first and last conv / linear and depthwise convs at 8 bits)

``SCHEMES`` is the table ``compile`` reads: scheme -> fn(graph, *, model, calib, input_shape,
sparse, observer, progress, rounding) returning (ModelBuilder, output tensor id); ``builder.metadata`` (a dict, optional) is
merged into the file's metadata. A new scheme is a new module and one row here.
"""
from __future__ import annotations

from ... import quant
from ...graph import fold_batchnorm, trace
from .dense import lower
from .int8_full import lower_int8_full
from .sparse import lower_sparse


def _lower_weights(graph, schemes, model, calib, input_shape, rounding, what: str):
    """dense.lower with weights in ``schemes``' forms; with rounding='gptq' their codes by GPTQ from
    each layer's input statistics on ``calib``, over the BatchNorm-folded graph (fusion keeps a
    conv's output id, which keys them)."""
    if rounding in (None, "nearest"):
        return lower(graph, schemes)
    batches = quant.calibration_batches(model, calib, CALIB_SAMPLES, what=f"{what} with rounding='gptq'")
    rounder = quant.GPTQRounding(quant.input_hessians(fold_batchnorm(trace(model, input_shape)), batches))
    builder, out = lower(graph, schemes, rounding=rounder)
    builder.metadata = {"weights": {"rounding": rounding}}
    return builder, out


def lower_mixed(graph, plan, model=None, calib=None, input_shape=None, rounding=None):
    """A MixedPrecisionPlan: each conv / linear node's weights in its planned form, the rest f32;
    with rounding='gptq', the quantized forms' codes by GPTQ over ``calib``."""
    missing = [n.name for n in graph.nodes if n.op in ("conv2d", "linear") and n.name not in plan.bits]
    unknown = set(plan.bits) - {n.name for n in graph.nodes}
    if missing or unknown:
        raise ValueError(f"scheme: the mixed-precision plan does not fit this model (layers without bits: "
                         f"{missing[:3]}, unknown layers: {sorted(unknown)[:3]})")
    return _lower_weights(graph, plan.schemes(), model, calib, input_shape, rounding, "a mixed-precision plan")


def _binary(graph, **_):
    """Every conv / linear layer binary except the first and the last (kept at 8 bits, as binary
    networks do: they see the raw input and produce the logits). A binary conv that reads a sign
    (binary activations, quant.prepare_qat(binary_activations=True or 'all')) runs as one
    XNOR-popcount op with the sign, and its threshold if it has one, folded in (dense.lower_b1_conv)."""
    layers = [n.name for n in graph.nodes if n.op in ("conv2d", "linear")]
    kept = {layers[0], layers[-1]} if layers else set()
    schemes = {k: "int8-weight" if k in kept else "binary-weight" for k in layers}
    pairs = [(s, c) for s, c in quant.binary_activation_points(graph) if s.op == "sign"]
    for s, c in pairs:
        schemes[s.name], schemes[c.name] = "fused-sign", "b1"
    return lower(graph, schemes)


def _fp32(graph, *, sparse, **_):
    if sparse is not False:  # pruned 1x1 convs and linear layers as sparse ops
        return lower_sparse(graph, sparse)
    return lower(graph, "fp32")


def _dense(scheme):
    def fn(graph, *, model=None, calib=None, input_shape=None, rounding=None, **_):
        return _lower_weights(graph, scheme, model, calib, input_shape, rounding, scheme)
    return fn


def _int_full(weight_bits):
    def fn(graph, *, model, calib, input_shape, observer="minmax", progress=False, rounding=None, **_):
        return lower_int8_full(graph, model=model, calib=calib, input_shape=input_shape, observer=observer,
                               progress=progress, weight_bits=weight_bits, rounding=rounding)
    return fn


SCHEMES = {
    "fp32": _fp32,
    "fp16": _dense("fp16"),
    "int8-weight": _dense("int8-weight"),
    "int4-weight": _dense("int4-weight"),
    "int2-weight": _dense("int2-weight"),
    "binary": _binary,
    "int8-full": _int_full(8),
    "int4-full": _int_full(4),
}
SPARSE_SCHEMES = ("fp32",)  # schemes with sparse ops
CALIBRATED_SCHEMES = ("int8-full", "int4-full")  # schemes that take calib and observer
# schemes whose weights take rounding='gptq' (with calib: the layers' inputs it compensates over)
ROUNDED_SCHEMES = ("int8-weight", "int4-weight", "int2-weight") + CALIBRATED_SCHEMES
CALIB_SAMPLES = 256   # calibration images GPTQ and the ONNX int8 export read (as compile's int8-full num_samples)

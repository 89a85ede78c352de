"""``compile(model, scheme)``: trace -> fuse -> weights in deployed form -> .edgeopt bytes -> Engine.

The Engine is built by loading the serialized bytes (the same path as ``load``), so what runs is
exactly what a saved file holds. The whole network runs in C++; no Python per layer.

Schemes (the paper's codes in brackets), each lowered by its module in deploy/lower/ (the table
``lower.SCHEMES``):
  fp32         f32 weights; pruned layers as sparse ops (lower/sparse.py)             [NQ]
  fp16         weights stored as IEEE fp16, widened to f32 while packing; f32 compute [F16]
  int8-weight  weights int8, symmetric, one scale per output channel; f32 compute     [BLQ]
  int8-full    int8 weights and activations from calibration data (lower/int8_full.py) [FIQ]
  int4-full    int8-full with 4-bit weights (q in [-7, 7] per output channel) in every conv /
               linear layer but the first, the last and depthwise ones; kept 4-bit in the file and
               in memory, widened inside the integer kernels
  a MixedPrecisionPlan (quant.mixed_precision): each conv / linear layer's weights at its own
               8, 4 or 2 bits, as the three weight schemes store them; f32 compute     ["mixed"]
  binary       binary weights, sign(w) with alpha = mean|w| per output channel, bit-packed; the
               first and last conv / linear layers at int8-weight; f32 compute
  int4-weight  weights as 4-bit codes (q in [-7, 7], one scale per output channel), bit-packed in the
  int2-weight  file and in memory, widened while packing; f32 compute (2-bit: q in [-1, 1])
"""
from __future__ import annotations

from .. import quant
from .._check import check_choice, check_shape
from ..nn.module import check_module
from .._version import __version__
from ..graph import Graph, fuse, trace
from .engine import Engine
from .lower import CALIBRATED_SCHEMES, ROUNDED_SCHEMES, SCHEMES as _LOWERINGS, SPARSE_SCHEMES, lower_mixed

__all__ = ["compile", "SCHEMES", "build_metadata"]

SCHEMES = tuple(_LOWERINGS)


def compile(model, scheme: str = "fp32", input_shape=(1, 3, 32, 32), calib=None, sparse="auto",
            observer: str | None = None, progress: bool = False, rounding: str | None = None) -> Engine:
    """Compile `model` (an edgeopt.nn.Module) for the C++ runtime and return the loaded Engine.

    input_shape: (N, C, H, W) used to trace; the Engine then runs any batch size at that C, H, W.
    calib: calibration data for int8-full / int4-full and rounding="gptq" (an edgeopt Dataset or an
    array of inputs).
    sparse: fp32 only (deploy/sparse.py): "auto" runs 1x1 convs and linear layers with >= 70 %
    zero weights as sparse ops, True every such layer, False none.
    observer: int8-full / int4-full only, how activation ranges are chosen from the calibration data (default
    'minmax'; 'moving_average', 'percentile', 'mse', 'kl', see edgeopt.quant.observer), or 'auto':
    per tensor, the rule whose integer Engine agrees best with the fp32 model on the calibration
    data (the survey's verify-and-retry); its choices are in ``engine.metadata['int8_full']``
    and ``engine.report()``. progress: a progress bar over that search.
    rounding: int8-full / int4-full, int8-weight / int4-weight / int2-weight and mixed-precision plans, how weights become
    codes: 'nearest', or 'gptq': each layer's rounding errors compensated over its inputs on the
    first 256 samples of ``calib`` (edgeopt.quant.gptq), so its output stays closer to the float
    layer's; same grid, same file size, same speed. Default: 'gptq' with observer='auto' (part of
    its search for the most faithful Engine), else 'nearest'."""
    check_module("model", model)
    plan = scheme if isinstance(scheme, quant.MixedPrecisionPlan) else None
    if plan is None:
        check_choice("scheme", scheme, SCHEMES)
    input_shape = check_shape("input_shape", input_shape, 4)
    if calib is not None:
        quant.check_calib(calib, input_shape)
    check_choice("sparse", sparse, ("auto", True, False))
    if plan is not None and (observer is not None or sparse is True or (calib is not None and rounding != "gptq")):
        raise ValueError("scheme: a mixed-precision plan stores weights only (f32 compute); observer and "
                         "sparse=True do not apply, and calib only with rounding='gptq'")
    if observer is not None:
        check_choice("observer", observer, quant.OBSERVER_CHOICES)
        if scheme not in CALIBRATED_SCHEMES:
            raise ValueError(f"observer={observer!r}: scheme {scheme!r} does not calibrate activations "
                             f"(only {', '.join(CALIBRATED_SCHEMES)})")
    if rounding is not None:
        check_choice("rounding", rounding, quant.ROUNDINGS)
        if plan is None and scheme not in ROUNDED_SCHEMES:
            raise ValueError(f"rounding={rounding!r}: scheme {scheme!r} has no integer weight codes to round "
                             f"(only {', '.join(ROUNDED_SCHEMES)})")
    if sparse is True and scheme not in SPARSE_SCHEMES:
        raise ValueError(f"sparse=True: scheme {scheme!r} has no sparse op (fp32 only); use sparse='auto' or False")
    try:
        graph = fuse(trace(model, input_shape))
    except NotImplementedError as e:
        raise ValueError(str(e)) from None
    if plan is not None:
        builder, output = lower_mixed(graph, plan, model, calib, input_shape, rounding)
        scheme = "mixed"
    else:
        builder, output = _LOWERINGS[scheme](graph, model=model, calib=calib, input_shape=input_shape,
                                             sparse=sparse, observer=observer or "minmax", progress=progress,
                                             rounding=rounding)
    meta = build_metadata(model, scheme, graph)
    meta.update(getattr(builder, "metadata", None) or {})
    return Engine(builder.to_bytes(output, meta))


def build_metadata(model, scheme: str, graph: Graph) -> dict:
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


quant.hooks.register(compile=compile)

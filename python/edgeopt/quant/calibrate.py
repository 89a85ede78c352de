"""Calibration: the ranges a model's tensors take on sample data, for post-training quantization
(the survey's Algorithm 1, steps 1 and 4). The int8-full lowering and the ONNX int8 export both
calibrate here, so they read the same inputs the same way.

    batches = calibration_batches(model, calib, num_samples)    float32 model inputs
    observers = observe(graph, batches, points, observer)        {point: observer}
    observers = calibrate(model, calib, input_shape)             the same over the fused graph,
                                                                 keyed by layer name

``calib`` is a Dataset or a uint8 array of images (preprocessed as ``evaluate`` does: the model's
``input_norm``), or a float array of model inputs taken as they are (what ``model.forward`` takes).
The executor's observation hooks (edgeopt.graph) hand every tensor to its observer.
"""
from __future__ import annotations

import numpy as np

from .._check import check_array, check_choice, check_int
from .._finite import check_data
from ..data.dataset import Dataset
from ..data.preprocess import input_norm, make_loader
from ..graph import fuse, trace
from .observer import OBSERVERS, HistogramObserver

# What calibrating callers accept: a rule, or 'auto' (deploy's per-tensor verify-and-retry).
OBSERVER_CHOICES = tuple(OBSERVERS) + ("auto",)

__all__ = ["check_calib", "calibration_batches", "observe", "calibrate"]

_FINITE = ": calibration data must be finite"


def check_calib(calib, input_shape=None):
    """`calib` is a Dataset or a numeric array of samples (N, C, H, W), its samples shaped like
    ``input_shape`` without the batch when given (so a wrong channel count names calib, not a conv
    weight later). Returns it."""
    if not isinstance(calib, Dataset):
        calib = check_array("calib", calib, "biuf")
        if calib.ndim < 2:
            raise ValueError(f"calib: expected an array of samples (N, C, H, W), got shape {calib.shape}")
    sample = tuple(calib.shape) if isinstance(calib, Dataset) else calib.shape[1:]
    if input_shape is not None and sample != tuple(input_shape[1:]):
        raise ValueError(f"calib: expected samples of shape {tuple(input_shape[1:])} (input_shape without the "
                         f"batch), got samples of shape {sample}")
    return calib


def calibration_batches(model, calib, num_samples: int = 256, batch_size: int = 64, what: str = "int8",
                        input_shape=None):
    """Float32 batches of model inputs from the first ``num_samples`` samples of ``calib``,
    checked (finite values; samples shaped like ``input_shape`` without its batch, when given)
    before the first batch is made. ``what`` names the caller in the error when calib is missing."""
    num_samples = check_int("num_samples", num_samples, 1)
    if calib is None:
        raise ValueError(f"calib: {what} needs calibration data (a Dataset or an array of inputs), got None")
    calib = check_calib(calib, input_shape)
    if len(calib) == 0:
        raise ValueError("calib: the calibration data is empty")
    if isinstance(calib, np.ndarray) and calib.dtype != np.uint8:
        x = calib[:num_samples]
        check_data("calib", x, suffix=_FINITE)
        x = np.ascontiguousarray(x, dtype=np.float32)
        return (x[i:i + batch_size] for i in range(0, len(x), batch_size))
    if isinstance(calib, np.ndarray):
        calib = Dataset(calib, np.zeros(len(calib), np.int64))
    ds = calib.subset(np.arange(min(num_samples, len(calib))))
    check_data("calib", ds.x, suffix=_FINITE)
    mean, std = input_norm(model, ds)
    return (x for x, _ in make_loader(ds, batch_size, shuffle=False, seed=0, mean=mean, std=std))


def observe(graph, batches, points=None, observer: str = "minmax") -> dict:
    """Run ``graph`` in fp32 over ``batches``; an observer per point (every point of
    ``graph.points()`` by default: tensor ids, and (id, 'conv') / (id, 'sum') inside fused nodes),
    of the kind named by ``observer`` (OBSERVERS), or 'auto': a HistogramObserver, which gives every
    rule's range. A tensor that turns non-finite on finite data (an overflow) raises naming it."""
    points = list(graph.points()) if points is None else list(points)
    kind = HistogramObserver if observer == "auto" else OBSERVERS[check_choice("observer", observer, OBSERVER_CHOICES)]
    obs = {p: kind(name=graph.describe(p)) for p in points}

    def watcher(o):
        def watch(v):
            try:
                o(v)
            except ValueError:
                raise ValueError(f"calib: {o.name} is non-finite on the calibration data; check the "
                                 "calibration data and the model's weights") from None
        return watch

    hooks = {p: watcher(o) for p, o in obs.items()}
    for x in batches:
        graph.execute(x, observe=hooks)
    return obs


def calibrate(model, calib, input_shape=(1, 3, 32, 32), num_samples: int = 256, observer: str = "minmax") -> dict:
    """{name: observer} over the fused graph of ``model`` (a layer's name for its output,
    'input', '<layer>.conv' / '<layer>.sum' inside fused nodes) (BatchNorm folded,
    activations and residual adds fused: the tensors an int8 Engine quantizes), from the first
    ``num_samples`` samples of ``calib``. ``observer.calculate_qparams()`` gives each tensor's
    (scale, zero point)."""
    graph = fuse(trace(model, input_shape))
    obs = observe(graph, calibration_batches(model, calib, num_samples, what="calibrate", input_shape=input_shape),
                  observer=observer)
    return {_name(graph, p): o for p, o in obs.items()}


def _name(graph, point) -> str:
    """'input', a layer's name for its output, '<layer>.conv' / '<layer>.sum' inside fused nodes."""
    tensor, inner = point if isinstance(point, tuple) else (point, None)
    n = graph.producer(tensor)
    base = "input" if n is None else n.name
    return base if inner is None else f"{base}.{inner}"

"""Accuracy, top-5 and loss of a model (or a deployed Engine) on a dataset."""
from __future__ import annotations

import time

import numpy as np

from .. import _core
from .._check import check_bool, check_int
from ..data.dataset import check_dataset
from ..nn.module import Module
from ..data.preprocess import input_norm, make_loader


def check_model_data(model_or_engine, data, name: str = "data") -> None:
    """`data` (a checked Dataset) holds samples the model or Engine can take: an Engine's
    (C, H, W), a zoo model's channel count. Shapes only, O(1)."""
    shape = getattr(model_or_engine, "input_shape", None)  # an Engine
    channels = getattr(model_or_engine, "in_channels", None)  # a zoo model
    who = getattr(model_or_engine, "arch", None) or type(model_or_engine).__name__
    if isinstance(shape, tuple) and data.shape != shape:
        raise ValueError(f"{name}: the {who} takes samples of shape {shape}, got {data.shape}")
    if isinstance(channels, int) and data.shape[:1] != (channels,):
        raise ValueError(f"{name}: {who} takes {channels} input channel(s), got samples of shape {data.shape}")


def _check_model_or_engine(v):
    # An Engine is recognized by its run(), not imported: train sits below deploy (ARCHITECTURE.md).
    if not (isinstance(v, Module) or callable(getattr(v, "run", None))):
        raise TypeError(f"model_or_engine: expected an edgeopt.nn.Module or a deploy.Engine, "
                        f"got {type(v).__name__}")
    return v


def _predict(model_or_engine, x: np.ndarray) -> np.ndarray:
    run = getattr(model_or_engine, "run", None)
    if run is not None and not hasattr(model_or_engine, "backward"):
        return run(x)  # a deployed Engine
    return model_or_engine.forward(x)


def evaluate(model_or_engine, data, batch_size: int = 256, per_image: bool = False) -> dict:
    """{'acc', 'top5', 'loss', 'n', 'run_ms'} on `data`, with the same input preprocessing the
    model was trained with (recorded by fit) so a model and its deployed Engine see identical
    inputs. run_ms: wall time inside the model's forward / the Engine's run calls (input
    normalization excluded). per_image: run one image per call, as a device classifying a stream
    does (the reference study's Lat is this time over the test set); batches of `batch_size` are
    still what the loader prepares."""
    _check_model_or_engine(model_or_engine)
    check_dataset("data", data)
    batch_size = check_int("batch_size", batch_size, 1, 2**62)
    per_image = check_bool("per_image", per_image)
    if len(data) == 0:
        raise ValueError("data: the dataset is empty")
    check_model_data(model_or_engine, data)
    was_training = getattr(model_or_engine, "training", False)
    if hasattr(model_or_engine, "eval"):
        model_or_engine.eval()
    mean, std = input_norm(model_or_engine, data)
    correct = top5 = 0
    loss_sum = 0.0
    run_ns = 0
    try:
        for x, y in make_loader(data, batch_size, shuffle=False, seed=0, mean=mean, std=std):
            t0 = time.perf_counter_ns()
            if per_image:
                out = [_predict(model_or_engine, x[i:i + 1]) for i in range(len(x))]
            else:
                out = _predict(model_or_engine, x)
            run_ns += time.perf_counter_ns() - t0
            logits = np.ascontiguousarray(np.concatenate(out) if per_image else out, dtype=np.float32)
            logits = logits.reshape(len(y), -1)
            loss, _ = _core.layers.cross_entropy(logits, y, 0.0)
            loss_sum += float(loss) * len(y)
            k = min(5, logits.shape[1])
            best = np.argpartition(-logits, k - 1, axis=1)[:, :k]
            correct += int((logits.argmax(1) == y).sum())
            top5 += int((best == y[:, None]).any(1).sum())
    finally:
        if was_training and hasattr(model_or_engine, "train"):
            model_or_engine.train()
    n = len(data)
    return {"acc": correct / n, "top5": top5 / n, "loss": loss_sum / n, "n": n, "run_ms": run_ns / 1e6}

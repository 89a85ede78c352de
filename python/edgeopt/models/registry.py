"""The model zoo by name: ``create(name, num_classes, in_channels, width_mult)`` and ``available()``.

One table maps each name to its builder. Wide ResNets also accept any ``wrn<depth>_<k>`` with
depth = 6n + 4 beyond the listed ones.
"""
from __future__ import annotations

import difflib
import math
import os
import re
from functools import partial

import numpy as np

from .. import nn
from . import mobilenet, resnet, resnet_imagenet_style, vgg, wrn

__all__ = ["create", "available"]

_MODELS = {}
for _d in vgg.CONFIGS:
    _MODELS[f"vgg{_d}"] = partial(vgg.vgg, _d)
for _d in resnet.CIFAR_DEPTHS:
    _MODELS[f"resnet{_d}"] = partial(resnet.cifar_resnet, _d)
for _d in resnet_imagenet_style.BLOCKS:
    _MODELS[f"resnet{_d}"] = partial(resnet_imagenet_style.resnet, _d)
_MODELS["mobilenet_v1"] = mobilenet.mobilenet_v1
_MODELS["mobilenet_v2"] = mobilenet.mobilenet_v2
_MODELS["mobilenet_v3_small"] = partial(mobilenet.mobilenet_v3, "small")
_MODELS["mobilenet_v3_large"] = partial(mobilenet.mobilenet_v3, "large")
for _d, _k in ((16, 4), (16, 8), (28, 10), (40, 2)):
    _MODELS[f"wrn{_d}_{_k}"] = partial(wrn.wide_resnet, _d, _k)

_WRN = re.compile(r"wrn(\d+)_(\d+)")


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _closest(key: str):
    """The most similar known name (difflib ratio, ties to the longer common prefix), or None."""
    def score(cand):
        prefix = len(os.path.commonprefix([key, cand]))
        return difflib.SequenceMatcher(None, key, cand).ratio(), prefix
    best = max(_MODELS, key=score)
    return best if score(best)[0] >= 0.5 else None


def available() -> list:
    """Names ``create`` accepts, sorted (``wrn<d>_<k>`` takes other depths and widths too)."""
    return sorted(_MODELS, key=_natural_key)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def create(name: str, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
           **options) -> nn.Module:
    """Build a freshly initialised model (weights from edgeopt's seeded generator).

    ``num_classes`` outputs, ``in_channels`` input planes (1 for Fashion-MNIST, 3 for CIFAR),
    ``width_mult`` scales every layer's channels. Family options go in ``options``: ``shortcut``
    ('B' projection, default, or 'A' zero-pad) for resnet20..110; ``dropout`` for MobileNets and
    Wide ResNets. Every model takes 32x32 and 28x28 inputs (and anything larger).
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a model name (str), got {type(name).__name__}")
    num_classes = _positive_int(num_classes, "num_classes")
    in_channels = _positive_int(in_channels, "in_channels")
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float, np.integer, np.floating)) \
            or not math.isfinite(width_mult) or width_mult <= 0:
        raise ValueError(f"width_mult: expected a positive finite number, got {width_mult!r}")
    key = name.strip().lower().replace("-", "_")
    builder = _MODELS.get(key)
    if builder is None and _WRN.fullmatch(key):
        d, k = map(int, _WRN.fullmatch(key).groups())
        builder = partial(wrn.wide_resnet, d, k)
    if builder is None:
        close = _closest(key)
        hint = f"did you mean {close!r}? " if close else ""
        raise ValueError(f"name: unknown model {name!r}; {hint}available: {', '.join(available())}")
    try:
        return builder(num_classes=num_classes, in_channels=in_channels,
                       width_mult=float(width_mult), **options)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise TypeError(f"create({name!r}): unsupported option(s) {sorted(options)} "
                            f"({e})") from None
        raise

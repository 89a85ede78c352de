"""The model zoo by name: ``create(name, num_classes, in_channels, width_mult)`` and ``available()``.

One table maps each name to its builder. Wide ResNets also accept any ``wrn<depth>_<k>`` with
depth = 6n + 4 beyond the listed ones.
"""
from __future__ import annotations

import difflib
import os
import re
from functools import partial

from .. import nn
from .._check import INT32_MAX, show_value, check_float, check_int
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

_WRN = re.compile(r"wrn(\d{1,9})_(\d{1,9})")  # digits bounded: int() of a 5000-digit string raises


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


# Every family scales all its channels by width_mult, so parameters grow as its square: x4 already
# makes vgg19 a 320 M-parameter model. Larger factors only exhaust memory (use a wrn for width).
MAX_WIDTH_MULT = 4.0


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
    num_classes = check_int("num_classes", num_classes, 1, INT32_MAX)
    in_channels = check_int("in_channels", in_channels, 1, INT32_MAX)
    width_mult = check_float("width_mult", width_mult, 0.0, MAX_WIDTH_MULT, min_open=True)
    key = name.strip().lower().replace("-", "_")
    builder = _MODELS.get(key)
    if builder is None and _WRN.fullmatch(key):
        d, k = map(int, _WRN.fullmatch(key).groups())
        builder = partial(wrn.wide_resnet, d, k)
    if builder is None:
        close = _closest(key)
        hint = f"did you mean {close!r}? " if close else ""
        raise ValueError(f"name: unknown model {show_value(name)}; {hint}available: {', '.join(available())}")
    try:
        return builder(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, **options)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise TypeError(f"create({name!r}): unsupported option(s) {sorted(options)} "
                            f"({e})") from None
        raise

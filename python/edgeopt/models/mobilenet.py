"""MobileNet v1, v2 and v3 (small, large) adapted to 32x32 inputs.

ImageNet MobileNets downsample 32x, which leaves a 32x32 image at 1x1 for the whole last stage.
Here the stem runs at stride 1 and, for v2/v3, one early stride-2 block too, so v2/v3 end
at 4x4 (32 -> 4, and 28 -> 4 for Fashion-MNIST) and v1 at 2x2. Strides change activation sizes
only, never parameter shapes: the state dicts are the ImageNet models' (torchvision key names for
v2/v3), so torchvision's ImageNet weights load into the feature extractors.

* v1 (Howard et al. 2017): conv3x3(32) + 13 depthwise-separable units (dw 3x3 + pw 1x1, each
  conv-BN-ReLU); stem stride 1, the four stride-2 units kept. Keys ``features.<i>.{0,1}``
  (conv, bn), ``classifier``. 3,217,226 parameters for 10 classes.
* v2 (Sandler et al. 2018): inverted residuals with linear bottlenecks, ReLU6; stem stride 1 and
  the first 24-channel block at stride 1. 2,236,682 parameters for 10 classes (torchvision's
  ``mobilenet_v2`` with 10 classes).
* v3 (Howard et al. 2019): v2 blocks with squeeze-excitation (squeeze = make_divisible(exp/4))
  and hard-swish; stem stride 1 and the first stride-2 block (small: block 1, large: block 2)
  at stride 1. small 1,528,106, large 4,214,842 parameters for 10 classes.

Channel counts scale by ``width_mult`` and round to multiples of 8, as in the papers.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .._check import check_float
from ._common import NamedResidual, ZooModel, conv_bn, make_divisible, with_head

__all__ = ["MobileNet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3"]


class MobileNet(ZooModel):
    pass


def _head(features: nn.Sequential, classifier: nn.Module, arch, num_classes, in_channels) -> MobileNet:
    return with_head(MobileNet, arch, OrderedDict([("features", features)]), "classifier", classifier,
                     num_classes, in_channels)


# --------------------------------------------------------------------------- v1
# (output channels, stride) of the 13 depthwise-separable units, as in the paper; only the stem
# (ImageNet stride 2) is adapted.
_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
       (512, 1), (512, 1), (1024, 2), (1024, 1)]


def mobilenet_v1(num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.0) -> MobileNet:
    dropout = check_float("dropout", dropout, 0.0, 1.0, max_open=True)
    c0 = make_divisible(32 * width_mult)
    layers = [conv_bn(in_channels, c0, 3, 1, act=nn.ReLU)]
    cin = c0
    for c, s in _V1:
        cout = make_divisible(c * width_mult)
        layers.append(conv_bn(cin, cin, 3, s, groups=cin, act=nn.ReLU))  # depthwise
        layers.append(conv_bn(cin, cout, 1, 1, act=nn.ReLU))             # pointwise
        cin = cout
    classifier = nn.Linear(cin, num_classes)
    if dropout > 0:
        classifier = nn.Sequential(nn.Dropout(dropout), classifier)
    return _head(nn.Sequential(*layers), classifier, "mobilenet_v1", num_classes, in_channels)


# --------------------------------------------------------------------------- v2
# (expansion t, output channels c, repeats n, first stride s); the 24-channel stage runs at stride
# 1 for 32x32 inputs (ImageNet: 2).
_V2 = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
       (6, 320, 1, 1)]


def _inverted_residual(cin: int, cout: int, stride: int, t: int) -> nn.Module:
    hidden = cin * t
    layers = []
    if t != 1:
        layers.append(conv_bn(cin, hidden, 1, act=nn.ReLU6))
    layers.append(conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6))
    layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]  # linear bottleneck
    body = nn.Sequential(*layers)
    if stride == 1 and cin == cout:
        return NamedResidual("conv", body)
    return nn.Sequential(OrderedDict([("conv", body)]))


def mobilenet_v2(num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> MobileNet:
    dropout = check_float("dropout", dropout, 0.0, 1.0, max_open=True)
    cin = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    layers = [conv_bn(in_channels, cin, 3, 1, act=nn.ReLU6)]
    for t, c, n, s in _V2:
        cout = make_divisible(c * width_mult)
        for i in range(n):
            layers.append(_inverted_residual(cin, cout, s if i == 0 else 1, t))
            cin = cout
    layers.append(conv_bn(cin, last, 1, act=nn.ReLU6))
    classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
    return _head(nn.Sequential(*layers), classifier, "mobilenet_v2", num_classes, in_channels)


# --------------------------------------------------------------------------- v3
# (kernel, expanded, out, squeeze-excite, hard-swish, stride) per block, input channels following
# from the previous block (the stem gives 16). One early stride-2 block runs at stride 1 here.
_V3_SMALL = [(3, 16, 16, True, False, 1),   # ImageNet stride 2
             (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
             (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
             (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1),
             (5, 288, 96, True, True, 2), (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1)]
_V3_LARGE = [(3, 16, 16, False, False, 1),
             (3, 64, 24, False, False, 1),   # ImageNet stride 2
             (3, 72, 24, False, False, 1),
             (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
             (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
             (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
             (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1)]
_V3 = {"small": (_V3_SMALL, 1024), "large": (_V3_LARGE, 1280)}


def _v3_block(cin: int, k: int, exp: int, cout: int, se: bool, hs: bool, stride: int) -> nn.Module:
    act = nn.HardSwish if hs else nn.ReLU
    layers = []
    if exp != cin:
        layers.append(conv_bn(cin, exp, 1, act=act))
    layers.append(conv_bn(exp, exp, k, stride, groups=exp, act=act))
    if se:
        layers.append(nn.SqueezeExcitation(exp, make_divisible(exp // 4)))
    layers.append(conv_bn(exp, cout, 1))
    body = nn.Sequential(*layers)
    if stride == 1 and cin == cout:
        return NamedResidual("block", body)
    return nn.Sequential(OrderedDict([("block", body)]))


def mobilenet_v3(size: str = "small", num_classes: int = 10, in_channels: int = 3,
                 width_mult: float = 1.0, dropout: float = 0.2) -> MobileNet:
    if size not in _V3:
        raise ValueError(f"size: expected 'small' or 'large', got {size!r}")
    dropout = check_float("dropout", dropout, 0.0, 1.0, max_open=True)
    cfg, hidden = _V3[size]
    cin = make_divisible(16 * width_mult)
    layers = [conv_bn(in_channels, cin, 3, 1, act=nn.HardSwish)]
    for k, exp, out, se, hs, s in cfg:
        cout = make_divisible(out * width_mult)
        layers.append(_v3_block(cin, k, make_divisible(exp * width_mult), cout, se, hs, s))
        cin = cout
    layers.append(conv_bn(cin, 6 * cin, 1, act=nn.HardSwish))
    hidden = make_divisible(hidden * width_mult)
    classifier = nn.Sequential(nn.Linear(6 * cin, hidden), nn.HardSwish(), nn.Dropout(dropout),
                               nn.Linear(hidden, num_classes))
    return _head(nn.Sequential(*layers), classifier, f"mobilenet_v3_{size}", num_classes, in_channels)

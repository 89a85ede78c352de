"""Pieces every model family shares: channel scaling, conv-BN-activation units, the model base
class (a Sequential that checks its input) and the weight initialisation.

Models are built only from ``edgeopt.nn`` modules (Sequential, ResidualBlock, SqueezeExcitation and
the layers), so backward, state dicts, pruning, quantization and deployment see ordinary layers.
The one exception is opt-in: the zero-pad shortcut of ``resnet20..110`` with ``shortcut="A"``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from ..nn import init

__all__ = ["make_divisible", "scale_channels", "conv_bn", "ZooModel", "NamedResidual", "init_weights"]


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (MobileNet rule): nearest multiple, at
    least ``divisor``, and never more than 10 % below ``v``."""
    n = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return n + divisor if n < 0.9 * v else n


def scale_channels(c: int, width_mult: float) -> int:
    """``c * width_mult`` rounded, at least 1 (VGG, ResNet and WRN widths; exact at 1.0)."""
    return max(1, int(round(c * width_mult)))


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act=None,
            bias: bool = False) -> nn.Sequential:
    """Conv2d (same padding) + BatchNorm2d (+ activation): children ``0``, ``1`` (, ``2``) as in
    torchvision's Conv2dNormActivation, so state-dict keys line up."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=bias),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ZooModel(nn.Sequential):
    """A model of the zoo: a Sequential of named stages plus what it was built for.

    ``arch``, ``num_classes`` and ``in_channels`` are plain attributes; ``forward`` rejects an
    input whose channel count or spatial size the model cannot take, naming the model.
    """

    min_size = 1  # smallest input height/width the layer stack can reduce without reaching 0

    def __init__(self, arch: str, stages: "OrderedDict[str, nn.Module]", num_classes: int,
                 in_channels: int):
        super().__init__(stages)
        self.arch, self.num_classes, self.in_channels = arch, num_classes, in_channels

    def forward(self, x):
        if isinstance(x, np.ndarray):
            if x.ndim != 4 or x.shape[1] != self.in_channels:
                raise ValueError(f"{self.arch}: expected an input of shape (N, {self.in_channels}, H, W), "
                                 f"got shape {x.shape}")
            if min(x.shape[2:]) < self.min_size:
                raise ValueError(f"{self.arch}: input height and width must be at least {self.min_size}, "
                                 f"got shape {x.shape}")
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, num_classes={self.num_classes}, in_channels={self.in_channels}"


class NamedResidual(nn.ResidualBlock):
    """A ResidualBlock whose body is registered under another name (torchvision calls it ``conv``
    in MobileNetV2 and ``block`` in MobileNetV3), so keys such as ``features.2.conv.0.0.weight``
    load straight from torchvision. ``.body`` still returns it, so code that walks ResidualBlocks
    (fusion, deployment) treats this one like any other."""

    def __init__(self, body_name: str, body: nn.Module, shortcut=None, activation=None):
        super().__init__(body, shortcut, activation)
        self._body_name = body_name
        self.__dict__["_modules"] = OrderedDict(
            (body_name if k == "body" else k, m) for k, m in self._modules.items())

    @property
    def body(self) -> nn.Module:
        return self._modules[self._body_name]


def with_head(cls, arch: str, stages: OrderedDict, head_name: str, head: nn.Module, num_classes: int,
              in_channels: int):
    """The zoo's common ending: ``stages`` then global average pooling, flatten and ``head`` (named
    ``head_name``), built as an initialized ``cls``."""
    stages["avgpool"] = nn.GlobalAvgPool2d()
    stages["flatten"] = nn.Flatten()
    stages[head_name] = head
    model = cls(arch, stages, num_classes, in_channels)
    init_weights(model)
    return model


def init_weights(model: nn.Module) -> None:
    """He-normal (fan_out) conv weights, zero conv biases, BatchNorm 1/0 — torchvision's scheme
    for these families; Linear layers keep PyTorch's default. Draws from edgeopt's seeded
    generator, so ``edgeopt.manual_seed`` makes a model repeatable."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            init.ones_(m.weight)
            init.zeros_(m.bias)

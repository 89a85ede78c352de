"""CIFAR ResNets: resnet20/32/44/56/110 (He et al. 2016, section 4.2).

A 3x3 conv with 16 channels, then three stages of n = (depth - 2) / 6 basic blocks with 16, 32 and
64 channels (stride 2 at the first block of stages 2 and 3), global average pool, Linear(64, classes).

Shortcuts where the shape changes (twice per network):

* ``shortcut="B"`` (default): 1x1 stride-2 conv + BatchNorm projection (the paper's option B).
  Every layer is an ordinary conv/BN, so BN folding, quantization and the deploy runtime need no
  special operator. 10 classes: resnet20 272,474, resnet32 466,906, resnet44 661,338,
  resnet56 855,770, resnet110 1,730,714 parameters.
* ``shortcut="A"``: parameter-free subsample + zero channel padding, exactly the paper's CIFAR
  networks (0.27 M / 0.46 M / 0.66 M / 0.85 M / 1.7 M): resnet20 269,722, resnet56 853,018,
  resnet110 1,727,962. Its shortcut is a model-specific module (:class:`ZeroPadShortcut`).

Keys: ``conv1``, ``bn1``, ``layer<s>.<j>.body.{conv1,bn1,conv2,bn2}``,
``layer<s>.<j>.shortcut.{0,1}`` (option B), ``fc``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from ._common import ZooModel, scale_channels, with_head

__all__ = ["ResNet", "ZeroPadShortcut", "basic_block", "cifar_resnet", "CIFAR_DEPTHS"]

CIFAR_DEPTHS = (20, 32, 44, 56, 110)


class ResNet(ZooModel):
    pass


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: x[:, :, ::s, ::s] with zero channels added evenly on both sides
    (cin -> cout). No parameters; backward takes the matching slice of dy."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ZeroPadShortcut: out_channels ({out_channels}) must be >= in_channels "
                             f"({in_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.pad_front = (out_channels - in_channels) // 2

    def forward(self, x):
        x = self._check_input(x, 4, self.in_channels)
        s, lo = self.stride, self.pad_front
        sub = x[:, :, ::s, ::s]
        y = np.zeros((x.shape[0], self.out_channels) + sub.shape[2:], np.float32)
        y[:, lo:lo + self.in_channels] = sub
        self._save_for_backward(y, x.shape)
        return y

    def backward(self, dy):
        dy, (x_shape,) = self._saved_for_backward(dy)
        s, lo = self.stride, self.pad_front
        dx = np.zeros(x_shape, np.float32)
        dx[:, :, ::s, ::s] = dy[:, lo:lo + self.in_channels]
        return dx

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def projection(cin: int, cout: int, stride: int) -> nn.Sequential:
    """1x1 conv + BN shortcut (option B; torchvision's ``downsample``)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def basic_block(cin: int, cout: int, stride: int, shortcut: str = "B") -> nn.ResidualBlock:
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 3x3 convs, stride on conv1."""
    body = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(cin, cout, 3, stride, 1, bias=False)),
        ("bn1", nn.BatchNorm2d(cout)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(cout, cout, 3, 1, 1, bias=False)),
        ("bn2", nn.BatchNorm2d(cout)),
    ]))
    skip = None
    if stride != 1 or cin != cout:
        skip = projection(cin, cout, stride) if shortcut == "B" else ZeroPadShortcut(cin, cout, stride)
    return nn.ResidualBlock(body, skip, nn.ReLU())


def cifar_resnet(depth: int, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                 shortcut: str = "B") -> ResNet:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth: expected 6n + 2 (e.g. {', '.join(map(str, CIFAR_DEPTHS))}), got {depth!r}")
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut: expected 'A' (zero-pad) or 'B' (1x1 projection), got {shortcut!r}")
    n = (depth - 2) // 6
    widths = [scale_channels(c, width_mult) for c in (16, 32, 64)]
    stages = OrderedDict([
        ("conv1", nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)),
        ("bn1", nn.BatchNorm2d(widths[0])),
        ("relu", nn.ReLU()),
    ])
    cin = widths[0]
    for s, c in enumerate(widths):
        blocks = []
        for j in range(n):
            blocks.append(basic_block(cin, c, 2 if s > 0 and j == 0 else 1, shortcut))
            cin = c
        stages[f"layer{s + 1}"] = nn.Sequential(*blocks)
    return with_head(ResNet, f"resnet{depth}", stages, "fc", nn.Linear(cin, num_classes), num_classes, in_channels)

"""VGG-11/13/16/19 with batch normalisation, CIFAR form (Simonyan & Zisserman 2015; the usual
32x32 adaptation): 3x3 conv-BN-ReLU stages with 2x2 max-pools and one Linear(512, classes).

Parameter counts for 10 classes: vgg11 9,231,114; vgg13 9,416,010; vgg16 14,728,266;
vgg19 20,040,522 (convs keep their bias, as in torchvision's ``vgg*_bn``).

Small inputs: the fifth pooling is a global average pool instead of the fifth 2x2 max-pool. At
32x32 it pools the last 2x2 map (avg instead of max; same parameters), and it lets 28x28 inputs
(Fashion-MNIST: 28 -> 14 -> 7 -> 3 -> 1) through where a fifth max-pool would reach size 0.
State-dict keys as torchvision: ``features.<i>.*`` (conv, bn, relu, pool in order) and
``classifier.*``.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ._common import ZooModel, scale_channels, with_head

__all__ = ["VGG", "vgg", "CONFIGS"]

# Output channels of each 3x3 conv; "M" is a 2x2 max-pool. The fifth pool is the global one.
CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class VGG(ZooModel):
    min_size = 16  # four 2x2 max-pools


def vgg(depth: int, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> VGG:
    if depth not in CONFIGS:
        raise ValueError(f"depth: expected one of {sorted(CONFIGS)}, got {depth!r}")
    layers, cin = [], in_channels
    for v in CONFIGS[depth]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = scale_channels(v, width_mult)
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
    return with_head(VGG, f"vgg{depth}", OrderedDict([("features", nn.Sequential(*layers))]), "classifier",
                     nn.Linear(cin, num_classes), num_classes, in_channels)

"""ResNet-18/34/50/101 (He et al. 2016, ImageNet depths) with the stem adapted to 32x32 images:
a 3x3 stride-1 conv and no max-pool (the common CIFAR adaptation), then four stages of 64, 128,
256 and 512 base channels (stride 2 at stages 2-4), global average pool, Linear.

18/34 use basic blocks, 50/101 bottlenecks (1x1 reduce, 3x3 with the stride — torchvision's
"v1.5" placement — 1x1 expand x4). Shortcuts where the shape changes are 1x1 conv + BN
projections. Parameters for 10 classes: resnet18 11,173,962; resnet34 21,282,122;
resnet50 23,520,842; resnet101 42,512,970.

Keys: ``conv1``, ``bn1``, ``layer<s>.<j>.body.{conv1,bn1,conv2,bn2[,conv3,bn3]}``,
``layer<s>.<j>.shortcut.{0,1}``, ``fc``.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ._common import scale_channels, with_head
from .resnet import ResNet, basic_block, projection

__all__ = ["bottleneck", "resnet", "BLOCKS"]

# depth -> (bottleneck?, blocks per stage)
BLOCKS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)),
          50: (True, (3, 4, 6, 3)), 101: (True, (3, 4, 23, 3))}


def bottleneck(cin: int, planes: int, stride: int, expansion: int = 4) -> nn.ResidualBlock:
    cout = planes * expansion
    body = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(cin, planes, 1, bias=False)),
        ("bn1", nn.BatchNorm2d(planes)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(planes, planes, 3, stride, 1, bias=False)),
        ("bn2", nn.BatchNorm2d(planes)),
        ("relu2", nn.ReLU()),
        ("conv3", nn.Conv2d(planes, cout, 1, bias=False)),
        ("bn3", nn.BatchNorm2d(cout)),
    ]))
    skip = projection(cin, cout, stride) if stride != 1 or cin != cout else None
    return nn.ResidualBlock(body, skip, nn.ReLU())


def resnet(depth: int, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> ResNet:
    if depth not in BLOCKS:
        raise ValueError(f"depth: expected one of {sorted(BLOCKS)}, got {depth!r}")
    is_bottleneck, counts = BLOCKS[depth]
    widths = [scale_channels(c, width_mult) for c in (64, 128, 256, 512)]
    stages = OrderedDict([
        ("conv1", nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)),
        ("bn1", nn.BatchNorm2d(widths[0])),
        ("relu", nn.ReLU()),
    ])
    cin = widths[0]
    for s, (planes, n) in enumerate(zip(widths, counts)):
        blocks = []
        for j in range(n):
            stride = 2 if s > 0 and j == 0 else 1
            if is_bottleneck:
                blocks.append(bottleneck(cin, planes, stride))
                cin = planes * 4
            else:
                blocks.append(basic_block(cin, planes, stride))
                cin = planes
        stages[f"layer{s + 1}"] = nn.Sequential(*blocks)
    return with_head(ResNet, f"resnet{depth}", stages, "fc", nn.Linear(cin, num_classes), num_classes, in_channels)

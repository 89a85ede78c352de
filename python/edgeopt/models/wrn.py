"""Wide ResNets WRN-d-k (Zagoruyko & Komodakis 2016), CIFAR form.

A 3x3 conv with 16 channels, three groups of n = (d - 4) / 6 pre-activation basic blocks with
16k, 32k and 64k channels (stride 2 at the first block of groups 2 and 3), then BN-ReLU, global
average pool and Linear. A block is conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut, with
optional dropout between the convs; where the shape changes the shortcut is a 1x1 conv applied
to the pre-activated input relu(bn1(x)), as in the authors' code.

Parameters for 10 classes: wrn16_4 2,748,890; wrn16_8 10,961,370; wrn28_10 36,479,194;
wrn40_2 2,243,546.

Keys: ``conv1``, ``block<g>.<j>.body.{bn1,conv1,bn2,conv2}`` for identity blocks;
``block<g>.<j>.{bn1, residual.body.conv1, residual.body.bn2, residual.body.conv2,
residual.shortcut}`` for the first block of a group; ``bn1``, ``fc``.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .._check import check_float, check_int
from ._common import ZooModel, scale_channels, with_head

__all__ = ["WideResNet", "wide_resnet"]


class WideResNet(ZooModel):
    pass


def _wide_block(cin: int, cout: int, stride: int, dropout: float) -> nn.Module:
    convs = [("conv1", nn.Conv2d(cin, cout, 3, stride, 1, bias=False)),
             ("bn2", nn.BatchNorm2d(cout)),
             ("relu2", nn.ReLU())]
    if dropout > 0:
        convs.append(("dropout", nn.Dropout(dropout)))
    convs.append(("conv2", nn.Conv2d(cout, cout, 3, 1, 1, bias=False)))
    preact = [("bn1", nn.BatchNorm2d(cin)), ("relu1", nn.ReLU())]
    if stride == 1 and cin == cout:
        # identity shortcut takes x itself, so the pre-activation belongs to the body
        return nn.ResidualBlock(nn.Sequential(OrderedDict(preact + convs)))
    # projection shortcut takes relu(bn1(x)): pre-activate first, then branch
    shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)
    residual = nn.ResidualBlock(nn.Sequential(OrderedDict(convs)), shortcut)
    return nn.Sequential(OrderedDict(preact + [("residual", residual)]))


# Names such as "wrn99999994_2" parse as a WRN; building one would run for hours and exhaust
# memory, so depth and size are bounded before any layer is built. 1000 is beyond the deepest
# published (pre-activation) ResNets; 2^30 parameters are 4 GiB of float32 weights.
MAX_DEPTH = 1000
MAX_PARAMS = 2**30


def wide_resnet(depth: int, widen_factor: int, num_classes: int = 10, in_channels: int = 3,
                width_mult: float = 1.0, dropout: float = 0.0) -> WideResNet:
    depth = check_int("depth", depth, 10, MAX_DEPTH)
    if (depth - 4) % 6:
        raise ValueError(f"depth: expected 6n + 4 (e.g. 16, 22, 28, 40), got {depth!r}")
    widen_factor = check_int("widen_factor", widen_factor, 1)
    dropout = check_float("dropout", dropout, 0.0, 1.0, max_open=True)
    n = (depth - 4) // 6
    c0 = scale_channels(16, width_mult)
    widths = [scale_channels(c * widen_factor, width_mult) for c in (16, 32, 64)]
    params = sum(2 * n * 9 * c * c for c in widths)  # the 3x3 convs dominate
    if params > MAX_PARAMS:
        raise ValueError(f"widen_factor: wrn{depth}_{widen_factor} at width_mult={width_mult} would have about "
                         f"{params:.3g} parameters, more than the {MAX_PARAMS:.3g} the zoo builds; "
                         "use a smaller depth, widen_factor or width_mult")
    stages = OrderedDict([("conv1", nn.Conv2d(in_channels, c0, 3, 1, 1, bias=False))])
    cin = c0
    for g, c in enumerate(widths):
        blocks = []
        for j in range(n):
            blocks.append(_wide_block(cin, c, 2 if g > 0 and j == 0 else 1, dropout))
            cin = c
        stages[f"block{g + 1}"] = nn.Sequential(*blocks)
    stages["bn1"] = nn.BatchNorm2d(cin)
    stages["relu"] = nn.ReLU()
    return with_head(WideResNet, f"wrn{depth}_{widen_factor}", stages, "fc", nn.Linear(cin, num_classes),
                     num_classes, in_channels)

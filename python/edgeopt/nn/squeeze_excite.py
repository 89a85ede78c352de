"""Squeeze-and-excitation (MobileNetV3): x * gate(x), gate = hardsigmoid(fc2(relu(fc1(avgpool(x)))))."""
from __future__ import annotations

from .._check import INT32_MAX, check_callable, check_int
from . import functional as F
from .activation import HardSigmoid, ReLU
from .conv import Conv2d
from .module import Module
from .pooling import GlobalAvgPool2d

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(Module):
    """Children named as torchvision's ``SqueezeExcitation`` (``fc1``, ``fc2`` are 1x1 convs), so
    its state dicts load directly. ``activation`` and ``scale_activation`` are Module classes."""

    def __init__(self, input_channels: int, squeeze_channels: int, activation=ReLU,
                 scale_activation=HardSigmoid):
        super().__init__()
        input_channels = check_int("SqueezeExcitation.input_channels", input_channels, 1, INT32_MAX)
        squeeze_channels = check_int("SqueezeExcitation.squeeze_channels", squeeze_channels, 1, INT32_MAX)
        check_callable("SqueezeExcitation.activation", activation)
        check_callable("SqueezeExcitation.scale_activation", scale_activation)
        self.input_channels = input_channels
        self.avgpool = GlobalAvgPool2d()
        self.fc1 = Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _fusable(self) -> bool:
        """1x1 convs, ReLU and HardSigmoid (not wrapped, e.g. with a fake quantizer) with no hooks
        on any part: one C++ call forward and one backward (nn.functional.squeeze_excite) instead
        of five layers through Python."""
        return (type(self.fc1) is Conv2d and type(self.fc2) is Conv2d and type(self.activation) is ReLU
                and type(self.scale_activation) is HardSigmoid and
                not any(m._hooked() for m in (self.avgpool, self.fc1, self.fc2, self.activation,
                                             self.scale_activation)))

    def forward(self, x):
        x = self._check_input(x, 4, self.input_channels)
        if self._fusable():
            c, sq = self.fc1.in_channels, self.fc1.out_channels
            w1, w2 = self.fc1._tensor("weight"), self.fc2._tensor("weight")
            b1 = None if self.fc1.bias is None else self.fc1.bias.data
            b2 = None if self.fc2.bias is None else self.fc2.bias.data
            y, saved = F.squeeze_excite(x, w1.reshape(sq, c), b1, w2.reshape(c, sq), b2)
            self._save_for_backward(y, True, x, (w1, w2, saved))
            return y
        s = self.avgpool(x)
        s = self.scale_activation(self.fc2(self.activation(self.fc1(s))))
        s2 = s.reshape(s.shape[0], s.shape[1])
        y = F.channel_scale(x, s2)
        self._save_for_backward(y, False, x, s2)
        return y

    def backward(self, dy):
        dy, (fused, x, kept) = self._saved_for_backward(dy)
        if fused:
            w1, w2, saved = kept
            c, sq = self.fc1.in_channels, self.fc1.out_channels
            dw1, dw2 = self.fc1._grad_sink("weight", w1), self.fc2._grad_sink("weight", w2)
            db1 = None if self.fc1.bias is None else self.fc1.bias.grad
            db2 = None if self.fc2.bias is None else self.fc2.bias.grad
            dx = F.squeeze_excite_backward(dy, x, w1.reshape(sq, c), w2.reshape(c, sq), saved,
                                           dw1.reshape(sq, c), db1, dw2.reshape(c, sq), db2)
            self.fc1._grad_done("weight", dw1)
            self.fc2._grad_done("weight", dw2)
            return dx
        dx_direct, ds = F.channel_scale_backward(dy, x, kept)
        d = ds.reshape(ds.shape[0], ds.shape[1], 1, 1)
        for m in (self.scale_activation, self.fc2, self.activation, self.fc1, self.avgpool):
            d = m.backward(d)
        return F.add(dx_direct, d)

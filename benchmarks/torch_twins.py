"""PyTorch twins of edgeopt's zoo models, for benchmarks only (same architecture, same shapes)."""
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def resnet_cifar(depth=20, num_classes=10, in_channels=3):
    n = (depth - 2) // 6
    layers = [nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for i, c in enumerate([16, 32, 64]):
        for j in range(n):
            layers.append(BasicBlock(cin, c, 2 if (i > 0 and j == 0) else 1))
            cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)


class GraphTwin(nn.Module):
    """Any edgeopt model as a PyTorch module, from its traced, unfused graph (edgeopt.graph.trace):
    the same ops in the same order, the same weights, BatchNorm in training mode with running
    statistics. For the training-step benchmark of every zoo model without writing a twin by hand."""

    def __init__(self, model, input_shape):
        super().__init__()
        import numpy as np
        import edgeopt as eo

        self.graph = eo.graph.trace(model, input_shape)
        self.params = nn.ParameterDict()
        self.stats = {}
        for i, n in enumerate(self.graph.nodes):
            for k, v in n.params.items():
                if v is None:
                    continue
                t = torch.from_numpy(np.array(v, dtype=np.float32))
                if k in ("running_mean", "running_var"):
                    self.register_buffer(f"b{i}_{k}", t)
                else:
                    self.params[f"p{i}_{k}"] = nn.Parameter(t)

    def _p(self, i, k):
        key = f"p{i}_{k}"
        return self.params[key] if key in self.params else None

    def forward(self, x):
        F = torch.nn.functional
        v = {self.graph.input: x}
        acts = {"relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
                "sigmoid": torch.sigmoid, "none": lambda t: t}
        for i, n in enumerate(self.graph.nodes):
            a, ins = n.attrs, [v[j] for j in n.inputs]
            if n.op == "conv2d":
                y = F.conv2d(ins[0], self._p(i, "weight"), self._p(i, "bias"), a["stride"], a["padding"], 1,
                             a["groups"])
            elif n.op == "linear":
                y = F.linear(ins[0], self._p(i, "weight"), self._p(i, "bias"))
            elif n.op == "batchnorm2d":
                y = F.batch_norm(ins[0], getattr(self, f"b{i}_running_mean"), getattr(self, f"b{i}_running_var"),
                                 self._p(i, "weight"), self._p(i, "bias"), self.training, 0.1, a["eps"])
            elif n.op in acts:
                y = acts[n.op](ins[0])
            elif n.op == "maxpool2d":
                y = F.max_pool2d(ins[0], a["kernel"], a["stride"], a["padding"])
            elif n.op == "avgpool2d":
                y = F.avg_pool2d(ins[0], a["kernel"], a["stride"], a["padding"],
                                 count_include_pad=a.get("count_include_pad", True))
            elif n.op == "global_avgpool2d":
                y = F.adaptive_avg_pool2d(ins[0], 1)
            elif n.op == "flatten":
                y = torch.flatten(ins[0], 1)
            elif n.op == "add":
                y = ins[0] + ins[1]
            elif n.op == "channel_scale":
                y = ins[0] * ins[1]
            else:
                raise NotImplementedError(n.op)
            if n.op in ("conv2d", "linear"):
                if a.get("residual") is not None:
                    y = y + v[a["residual"]]
                y = acts[a.get("activation", "none")](y)
            v[n.output] = y
        return v[self.graph.output]

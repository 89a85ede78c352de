"""Seed corpus for fuzz_load: small compiled models (each op kind, every weight scheme), each file
prefixed with the harness's mode byte (1 = recompute checksums after mutation, 0 = as is)."""
import pathlib
import sys

import numpy as np

import edgeopt as eo
from edgeopt import deploy

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
eo.manual_seed(0)
nets = {
    "mix": (eo.nn.Sequential(
        eo.nn.Conv2d(3, 8, 3, padding=1, bias=False), eo.nn.BatchNorm2d(8), eo.nn.ReLU(),
        eo.nn.ResidualBlock(eo.nn.Sequential(eo.nn.Conv2d(8, 8, 3, padding=1, groups=8), eo.nn.BatchNorm2d(8)),
                            activation=eo.nn.ReLU6()),
        eo.nn.SqueezeExcitation(8, 4), eo.nn.BatchNorm2d(8), eo.nn.HardSwish(),
        eo.nn.MaxPool2d(2), eo.nn.AvgPool2d(2), eo.nn.GlobalAvgPool2d(), eo.nn.Flatten(), eo.nn.Linear(8, 5)),
        (1, 3, 12, 12)),
    "mlp": (eo.nn.Sequential(eo.nn.Flatten(), eo.nn.Linear(16, 8), eo.nn.ReLU(), eo.nn.Linear(8, 3)), (1, 1, 4, 4)),
    "dw5": (eo.nn.Sequential(
        eo.nn.Conv2d(2, 6, 3, padding=1, groups=2), eo.nn.HardSwish(),
        eo.nn.Conv2d(6, 12, 5, stride=2, padding=2, groups=6), eo.nn.BatchNorm2d(12), eo.nn.Sigmoid(),
        eo.nn.SqueezeExcitation(12, 4), eo.nn.GlobalAvgPool2d(), eo.nn.Flatten(), eo.nn.Linear(12, 4)),
        (1, 2, 7, 7)),
}
for name, (m, shape) in nets.items():
    m.eval()
    for scheme in ("fp32", "fp16", "int8-weight"):
        data = deploy.compile(m, scheme, input_shape=shape).to_bytes()
        for mode in (0, 1):
            (out / f"{name}_{scheme}_{mode}.bin").write_bytes(bytes([mode]) + data)
print(f"{len(list(out.iterdir()))} seeds in {out}")

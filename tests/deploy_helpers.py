"""Shared by the test_deploy_* files: models with realistic BatchNorm statistics, and the numpy
simulations (fp32 graph execution with deployed weights) the engine is compared against."""
import numpy as np

import edgeopt as eo
from edgeopt import quant

MODELS = ["resnet20", "mobilenet_v2", "mobilenet_v3_small", "vgg11", "wrn16_4"]


def realistic(model, seed: int = 0, in_channels: int = 3, size: int = 32):
    """Give every BatchNorm running statistics of real activations (one train-mode pass with
    momentum 1 on random data) and random affine parameters, so deep nets do not collapse to ~0
    in eval mode and the comparisons see O(1) values everywhere."""
    rng = np.random.default_rng(seed)
    bns = [m for m in model.modules() if isinstance(m, eo.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
        if bn.affine:
            bn.weight.data[...] = rng.uniform(0.5, 1.5, bn.weight.data.shape).astype(np.float32)
            bn.bias.data[...] = rng.uniform(-0.2, 0.2, bn.bias.data.shape).astype(np.float32)
    model.train()
    with eo.nn.no_grad():
        model.forward(rng.standard_normal((8, in_channels, size, size)).astype(np.float32))
    for bn in bns:
        bn.momentum = 0.1
    model.eval()
    return model


def simulate(model, x, scheme: str, input_shape=(1, 3, 32, 32)):
    """What the engine should compute for `scheme`: the fused graph run with edgeopt's fp32
    kernels, with conv / linear weights replaced by their deployed values (fp16-rounded, or
    8 / 4 / 2-bit codes * per-channel scale, or binary: sign * mean|w| with the first and last
    layers at 8 bits)."""
    g = eo.graph.fuse(eo.graph.trace(model, input_shape))
    layers = [n.name for n in g.nodes if n.op in ("conv2d", "linear")]
    for n in g.nodes:
        if n.op in ("conv2d", "linear"):
            w = n.params["weight"]
            if scheme == "binary" and n.name not in (layers[0], layers[-1]):  # sign(w) * mean|w| per channel
                rows = w.reshape(len(w), -1)
                alpha = np.abs(rows).mean(axis=1, keepdims=True).astype(np.float32)
                n.params["weight"] = (np.where(rows >= 0, 1.0, -1.0).astype(np.float32) * alpha).reshape(w.shape)
            elif scheme == "binary":
                q, s = quant.quantize_per_channel(w, dtype=np.float32)
                n.params["weight"] = quant.dequantize(q, s, 0, axis=0)
            elif scheme == "fp16":
                n.params["weight"] = w.astype(np.float16).astype(np.float32)
            elif scheme in ("int8-weight", "int4-weight", "int2-weight"):
                bits = {"int8-weight": 8, "int4-weight": 4, "int2-weight": 2}[scheme]
                q, s = quant.quantize_per_channel(w, bits=bits, dtype=np.float32)
                n.params["weight"] = quant.dequantize(q, s, 0, axis=0)
    return g.execute(x)


def rel_err(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-30))

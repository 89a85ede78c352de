"""Every layer against PyTorch CPU: output, input gradient, parameter gradients, buffers."""
import numpy as np
import pytest
import torch
from torch_oracle import assert_close, compare_layer

import edgeopt as eo
from edgeopt import nn


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# (N, Cin, Cout, H, W, kernel, stride, padding, groups, bias)
CONV_CASES = [
    (2, 3, 8, 9, 7, 3, 1, 1, 1, True),
    (1, 4, 6, 8, 8, 3, 2, 1, 2, True),
    (3, 8, 8, 11, 10, 3, 2, 1, 8, False),     # depthwise, stride 2
    (2, 6, 12, 7, 7, 3, 1, 0, 6, True),       # depthwise with channel multiplier 2
    (2, 5, 7, 6, 5, 1, 1, 0, 1, True),        # pointwise
    (2, 3, 4, 13, 12, (5, 3), (2, 1), (2, 0), 1, True),
    (2, 16, 16, 1, 1, 1, 1, 0, 1, True),      # 1x1 spatial (squeeze-excitation)
    (2, 1, 4, 28, 28, 5, 1, 2, 1, True),
    (1, 2, 3, 2, 2, 3, 1, 1, 1, True),        # kernel larger than the unpadded input
    (2, 17, 33, 5, 9, 3, 2, 1, 1, False),     # odd channel counts
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv2d(case, rng):
    n, cin, cout, h, w, k, s, p, g, bias = case
    x = randn(rng, n, cin, h, w)
    compare_layer(nn.Conv2d(cin, cout, k, s, p, g, bias),
                  torch.nn.Conv2d(cin, cout, k, s, p, groups=g, bias=bias), x)


@pytest.mark.parametrize("n,fin,fout,bias", [(4, 7, 5, True), (1, 16, 10, True), (3, 33, 1, False), (9, 64, 65, True)])
def test_linear(n, fin, fout, bias, rng):
    compare_layer(nn.Linear(fin, fout, bias), torch.nn.Linear(fin, fout, bias), randn(rng, n, fin))


def test_linear_leading_dims(rng):
    compare_layer(nn.Linear(8, 4), torch.nn.Linear(8, 4), randn(rng, 2, 3, 8))


BN_SHAPES = [(4, 3, 5, 7), (3, 8, 1, 1), (1, 5, 3, 3), (3, 16, 4, 4)]


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm2d_train(shape, rng):
    c = shape[1]
    t = torch.nn.BatchNorm2d(c)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(randn(rng, c)))
        t.bias.copy_(torch.from_numpy(randn(rng, c)))
    e = nn.BatchNorm2d(c)
    x = randn(rng, *shape, scale=2.0) + 1.5
    compare_layer(e, t, x, train=True)
    # A second batch continues from the updated running statistics in both.
    compare_layer(e, t, randn(rng, *shape) - 0.5, train=True, copy_weights=False, seed=1)
    assert int(e.num_batches_tracked) == 2


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm2d_eval(shape, rng):
    c = shape[1]
    t = torch.nn.BatchNorm2d(c, eps=1e-3)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(randn(rng, c)))
        t.bias.copy_(torch.from_numpy(randn(rng, c)))
        t.running_mean.copy_(torch.from_numpy(randn(rng, c)))
        t.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32)))
    compare_layer(nn.BatchNorm2d(c, eps=1e-3), t, randn(rng, *shape), train=False)


@pytest.mark.parametrize("kwargs", [dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                                    dict(momentum=0.3, eps=1e-4)])
def test_batchnorm2d_options(kwargs, rng):
    t = torch.nn.BatchNorm2d(6, **kwargs)
    e = nn.BatchNorm2d(6, **kwargs)
    for i in range(3):
        compare_layer(e, t, randn(rng, 3, 6, 4, 5) + i, train=True, copy_weights=(i == 0), seed=i)
    if kwargs.get("track_running_stats", True):
        compare_layer(e, t, randn(rng, 3, 6, 4, 5), train=False, copy_weights=False)


ACTIVATIONS = [(nn.ReLU, torch.nn.ReLU), (nn.ReLU6, torch.nn.ReLU6), (nn.HardSwish, torch.nn.Hardswish),
               (nn.HardSigmoid, torch.nn.Hardsigmoid), (nn.Sigmoid, torch.nn.Sigmoid)]


@pytest.mark.parametrize("eo_cls,torch_cls", ACTIVATIONS, ids=[a[0].__name__ for a in ACTIVATIONS])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 33), (1, 1, 1, 1)])
def test_activation(eo_cls, torch_cls, shape, rng):
    x = randn(rng, *shape, scale=4.0)  # reaches every piece (< -3, (-3, 3), (3, 6), > 6)
    compare_layer(eo_cls(), torch_cls(), x)


def test_binary_sign_against_torch_straight_through_estimator(rng):
    """Forward sign (0 -> +1, the runtime XNOR conv's rule); backward the clipped STE, written in
    torch as sign(x) + (hardtanh(x) - hardtanh(x).detach())."""
    x = randn(rng, 2, 3, 5, 7, scale=2.0)
    x[0, 0, 0, :3] = [0.0, 1.0, -1.0]
    dy = randn(rng, *x.shape)
    m = nn.BinarySign()
    y = m(x)
    np.testing.assert_array_equal(y, np.where(x >= 0, 1.0, -1.0))
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.nn.functional.hardtanh(xt)
    yt = torch.where(xt >= 0, 1.0, -1.0) + (ht - ht.detach())
    yt.backward(torch.tensor(dy))
    dx = m.backward(dy)
    inside = np.abs(x) != 1   # torch's hardtanh passes no gradient at exactly +-1; the STE here does
    np.testing.assert_array_equal(dx[inside], xt.grad.numpy()[inside])
    np.testing.assert_array_equal(dx[~inside], dy[~inside])


def test_binary_sign_with_learned_threshold_against_torch(rng):
    """BinarySign(C): +1 where x >= threshold[c]; its first training forward sets the threshold to
    each channel's mean; backward is the STE around the threshold, and the threshold's gradient is
    minus the passed gradient summed per channel (torch: sign(x - t) + hardtanh(x - t) - detached)."""
    c = 3
    x = np.abs(randn(rng, 4, c, 5, 7, scale=2.0))   # a ReLU's output: a plain sign is always +1
    m = nn.BinarySign(c)
    assert m.threshold.shape == (c,) and [n for n, _ in m.named_parameters()] == ["threshold"]
    m.train()
    y = m(x)
    t = x.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(m.threshold.data, t)
    np.testing.assert_array_equal(y, np.where(x >= t[None, :, None, None], 1.0, -1.0))
    assert 0.2 < (y > 0).mean() < 0.8   # the signs carry information
    m.backward(np.ones_like(y))
    x[0, :, 0, :3] = t[:, None] + np.float32([0.0, 1.0, -1.0])   # ties and the window's edges
    m.threshold.data[...] += np.float32(0.25)   # a later forward keeps the learned value
    m.threshold.grad[...] = 0
    t = m.threshold.data.copy()
    y = m(x)
    np.testing.assert_array_equal(y, np.where(x >= t[None, :, None, None], 1.0, -1.0))
    dy = randn(rng, *x.shape)
    dx = m.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t, requires_grad=True)
    z = xt - tt[None, :, None, None]
    ht = torch.nn.functional.hardtanh(z)
    (torch.where(xt >= tt[None, :, None, None], 1.0, -1.0) + (ht - ht.detach())).backward(torch.tensor(dy))
    d = x - t[None, :, None, None]
    inside = np.abs(d) != 1   # torch's hardtanh passes no gradient at exactly +-1; the STE here does
    np.testing.assert_array_equal(dx[inside], xt.grad.numpy()[inside])
    np.testing.assert_array_equal(dx[~inside], dy[~inside])
    want_dt = -np.where(np.abs(d) <= 1, dy, 0).sum(axis=(0, 2, 3), dtype=np.float64)
    np.testing.assert_allclose(m.threshold.grad, want_dt, rtol=1e-5, atol=1e-5)
    edges = np.where(np.abs(d) == 1, dy, 0).sum(axis=(0, 2, 3))   # torch leaves these out, as above
    np.testing.assert_allclose(m.threshold.grad, tt.grad.numpy() - edges, rtol=1e-5, atol=1e-5)
    # the learned threshold and whether it was set travel with the state
    m2 = nn.BinarySign(c)
    m2.load_state_dict(m.state_dict())
    m2.train()
    np.testing.assert_array_equal(m2(x), y)
    np.testing.assert_array_equal(m2.threshold.data, t)
    with pytest.raises(ValueError, match="3 channels"):
        m(x[:, :2])


# (kernel, stride, padding)
POOL_CASES = [(2, None, 0), (3, 2, 1), (3, 1, 1), ((3, 2), (2, 1), (1, 0)), (2, 2, 1), (5, 3, 2)]


@pytest.mark.parametrize("k,s,p", POOL_CASES)
@pytest.mark.parametrize("hw", [(7, 9), (8, 8)])
def test_maxpool2d(k, s, p, hw, rng):
    x = randn(rng, 2, 3, *hw)
    compare_layer(nn.MaxPool2d(k, s, p), torch.nn.MaxPool2d(k, s, p), x)


@pytest.mark.parametrize("k,s,p", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avgpool2d(k, s, p, count_include_pad, rng):
    x = randn(rng, 2, 3, 7, 9)
    compare_layer(nn.AvgPool2d(k, s, p, count_include_pad=count_include_pad),
                  torch.nn.AvgPool2d(k, s, p, count_include_pad=count_include_pad), x)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 16, 1, 1), (3, 8, 4, 4)])
def test_global_avgpool2d(shape, rng):
    compare_layer(nn.GlobalAvgPool2d(), torch.nn.AdaptiveAvgPool2d(1), randn(rng, *shape))
    compare_layer(nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d((1, 1)), randn(rng, *shape))


def test_flatten_and_identity(rng):
    x = randn(rng, 2, 3, 4, 5)
    compare_layer(nn.Flatten(), torch.nn.Flatten(), x)
    compare_layer(nn.Flatten(2), torch.nn.Flatten(2), x)
    compare_layer(nn.Identity(), torch.nn.Identity(), x)


def test_sequential_small_cnn(rng):
    e = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.HardSwish(),
                      nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(8, 5))
    t = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
                            torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                            torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), torch.nn.Hardswish(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))
    x = randn(rng, 4, 3, 12, 11)
    compare_layer(e, t, x, train=True)
    compare_layer(e, t, x, train=False, copy_weights=False)


class TorchResidual(torch.nn.Module):
    def __init__(self, body, shortcut=None, activation=None):
        super().__init__()
        self.body, self.shortcut, self.activation = body, shortcut, activation

    def forward(self, x):
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.activation is None else self.activation(y)


def _basic_block(lib, cin, cout, stride):
    body = lib.Sequential(lib.Conv2d(cin, cout, 3, stride, 1, bias=False), lib.BatchNorm2d(cout), lib.ReLU(),
                          lib.Conv2d(cout, cout, 3, 1, 1, bias=False), lib.BatchNorm2d(cout))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = lib.Sequential(lib.Conv2d(cin, cout, 1, stride, bias=False), lib.BatchNorm2d(cout))
    return body, shortcut


@pytest.mark.parametrize("cin,cout,stride", [(4, 4, 1), (4, 8, 2), (3, 6, 1)])
def test_residual_block(cin, cout, stride, rng):
    e = nn.ResidualBlock(*_basic_block(nn, cin, cout, stride), activation=nn.ReLU())
    t = TorchResidual(*_basic_block(torch.nn, cin, cout, stride), activation=torch.nn.ReLU())
    x = randn(rng, 2, cin, 9, 8)
    compare_layer(e, t, x, train=True)
    compare_layer(e, t, x, train=False, copy_weights=False)


def test_residual_block_without_activation(rng):
    e = nn.ResidualBlock(nn.Conv2d(5, 5, 3, padding=1))
    t = TorchResidual(torch.nn.Conv2d(5, 5, 3, padding=1))
    compare_layer(e, t, randn(rng, 2, 5, 6, 6))


class TorchSE(torch.nn.Module):
    def __init__(self, c, s):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = torch.nn.Conv2d(c, s, 1), torch.nn.Conv2d(s, c, 1)
        self.activation, self.scale_activation = torch.nn.ReLU(), torch.nn.Hardsigmoid()

    def forward(self, x):
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


@pytest.mark.parametrize("c,s,hw", [(16, 4, (5, 5)), (8, 8, (1, 1)), (24, 6, (7, 6))])
def test_squeeze_excitation(c, s, hw, rng):
    t = TorchSE(c, s)
    with torch.no_grad():  # make the gate vary across its whole range
        t.fc2.weight.mul_(8.0)
    compare_layer(nn.SqueezeExcitation(c, s), t, randn(rng, 3, c, *hw, scale=2.0))


def test_dropout_train_and_eval(rng):
    x = randn(rng, 8, 16, 6, 6) + 3.0  # nonzero everywhere
    d = nn.Dropout(0.3)
    y = d(x)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    assert_close(y[kept], x[kept] / 0.7, "kept values")
    dy = randn(rng, *x.shape)
    dx = d.backward(dy)
    assert_close(dx, np.where(kept, dy / 0.7, 0), "dropout gradient")
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(dy), dy)


def test_dropout_is_seeded(rng):
    x = randn(rng, 4, 64)
    eo.manual_seed(7)
    a1, a2 = nn.Dropout(0.5)(x), nn.Dropout(0.5)(x)
    eo.manual_seed(7)
    b1, b2 = nn.Dropout(0.5)(x), nn.Dropout(0.5)(x)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # a fresh mask per call


def test_default_init_matches_torch_distribution():
    eo.manual_seed(3)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.9 * bound
    assert np.abs(conv.bias.data).max() <= bound
    lin = nn.Linear(100, 10)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.bias.data).max() <= 0.1
    dw = nn.Conv2d(8, 8, 3, groups=8)
    assert np.abs(dw.weight.data).max() <= 1 / 3
    eo.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(16, 32, 3).weight.data, conv.weight.data)

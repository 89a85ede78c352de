"""Finite-difference checks of every layer's backward (input and parameter gradients)."""
import numpy as np
import pytest
from gradcheck import gradcheck

from edgeopt import nn


def away_from(x, kinks, margin=0.05):
    """Move values within ``margin`` of a kink of a piecewise function out of reach of eps."""
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, 2 * margin, -2 * margin)
    return x


def smooth_input(rng, *shape, kinks=(), scale=1.0):
    return away_from((rng.standard_normal(shape) * scale).astype(np.float32), kinks)


@pytest.mark.parametrize("cin,cout,k,s,p,g,bias", [
    (3, 5, 3, 1, 1, 1, True), (4, 6, 3, 2, 1, 2, True), (6, 6, 3, 2, 1, 6, False), (3, 4, (3, 1), (1, 2), (0, 1), 1, True)])
def test_conv2d(cin, cout, k, s, p, g, bias, rng):
    gradcheck(nn.Conv2d(cin, cout, k, s, p, g, bias), smooth_input(rng, 2, cin, 7, 6))


def test_linear(rng):
    gradcheck(nn.Linear(7, 5), smooth_input(rng, 3, 7))


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm2d(train, rng):
    bn = nn.BatchNorm2d(4)
    bn.weight.data[:] = rng.uniform(0.5, 1.5, 4)
    bn.bias.data[:] = rng.standard_normal(4)
    bn.running_mean[:] = rng.standard_normal(4)
    bn.running_var[:] = rng.uniform(0.5, 2, 4)
    bn.train(train)
    gradcheck(bn, smooth_input(rng, 3, 4, 3, 5, scale=2.0), eps=1e-2)


@pytest.mark.parametrize("cls,kinks", [(nn.ReLU, (0,)), (nn.ReLU6, (0, 6)), (nn.HardSwish, (-3, 3)),
                                       (nn.HardSigmoid, (-3, 3)), (nn.Sigmoid, ())])
def test_activation(cls, kinks, rng):
    gradcheck(cls(), smooth_input(rng, 2, 3, 4, 5, kinks=kinks, scale=4.0), n_coords=12)


def distinct_input(rng, *shape):
    """Values 0.05 apart, so a perturbation of 1e-2 never changes which element is a maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.05 - 1.0).astype(np.float32)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))])
def test_maxpool2d(k, s, p, rng):
    gradcheck(nn.MaxPool2d(k, s, p), distinct_input(rng, 2, 3, 7, 6), n_coords=12)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avgpool2d(count_include_pad, rng):
    gradcheck(nn.AvgPool2d(3, 2, 1, count_include_pad), smooth_input(rng, 2, 3, 7, 6), n_coords=8)


def test_global_avgpool_flatten_identity(rng):
    x = smooth_input(rng, 2, 3, 4, 5)
    for m in (nn.GlobalAvgPool2d(), nn.Flatten(), nn.Identity()):
        gradcheck(m, x)


def test_dropout(rng):
    gradcheck(nn.Dropout(0.4), smooth_input(rng, 4, 32), reseed=5, n_coords=10)


def test_residual_block(rng):
    body = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.HardSwish(), nn.Conv2d(4, 4, 3, 1, 1))
    block = nn.ResidualBlock(body, nn.Conv2d(3, 4, 1, 2), nn.Sigmoid())
    gradcheck(block, smooth_input(rng, 2, 3, 6, 6), n_coords=3)


def test_squeeze_excitation(rng):
    se = nn.SqueezeExcitation(6, 3, activation=nn.Sigmoid)  # smooth inner activation
    se.fc2.weight.data *= 4.0
    gradcheck(se, smooth_input(rng, 2, 6, 4, 3, scale=2.0), n_coords=3)


def test_small_cnn(rng):
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Sigmoid(), nn.AvgPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    gradcheck(net, smooth_input(rng, 3, 2, 6, 7), n_coords=3)

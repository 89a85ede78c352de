"""Layer kernels of edgeopt._core against PyTorch (forward values and autograd gradients).

Batch norm, activations, pooling, dropout, add, channel scale and cross-entropy: randomized odd
shapes, strides and padding; finite differences where cheap; bad input for every function.
"""
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import edgeopt as eo
from tolerances import TOL

C = eo._core
RTOL = TOL["f32"].rtol  # float32 kernels vs PyTorch float32


def close(got, want, rtol=RTOL, atol=None):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    if atol is None:  # relative to the tensor's scale, so values near zero do not dominate
        atol = rtol * max(1e-3, float(np.max(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def rand(rng, *shape, scale=1.0, offset=0.0):
    return (rng.standard_normal(shape) * scale + offset).astype(np.float32)


def leaf(a):
    return torch.from_numpy(a.copy()).requires_grad_(True)


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))  # stable across runs


# ---------------------------------------------------------------------------------------------
# batch norm

BN_SHAPES = [(2, 3, 5, 7), (8, 16, 4, 4), (1, 5, 3, 3), (3, 4, 1, 2), (16, 8, 9, 9), (2, 1, 1, 1)]


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_train_matches_torch(rng, shape):
    n, c, h, w = shape
    x = rand(rng, *shape, scale=2.0, offset=0.5)
    gamma, beta = rand(rng, c), rand(rng, c)
    rm, rv = rand(rng, c), rng.uniform(0.5, 2.0, c).astype(np.float32)
    momentum, eps = 0.1, 1e-5
    dy = rand(rng, *shape)

    bn = torch.nn.BatchNorm2d(c, eps=eps, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
        bn.running_mean.copy_(torch.from_numpy(rm))
        bn.running_var.copy_(torch.from_numpy(rv))
    xt = leaf(x)
    yt = bn(xt)
    yt.backward(torch.from_numpy(dy))

    y, mean, invstd = C.layers.batchnorm2d_forward_train(x, gamma, beta, rm, rv, momentum, eps)
    close(y, yt)
    x64 = x.astype(np.float64)
    close(mean, x64.mean(axis=(0, 2, 3)))
    close(invstd, 1.0 / np.sqrt(x64.var(axis=(0, 2, 3)) + eps))
    close(rm, bn.running_mean)  # updated in place, unbiased variance into running_var
    close(rv, bn.running_var)

    dgamma, dbeta = np.ones(c, np.float32), np.full(c, -2.0, np.float32)  # accumulated into
    dx = C.layers.batchnorm2d_backward(dy, x, gamma, mean, invstd, dgamma, dbeta)
    # dx is a difference of terms of size |dy| * |gamma| * invstd; with few values per channel it
    # can be much smaller than they are, so the tolerance is relative to the terms.
    close(dx, xt.grad, atol=RTOL * np.abs(dy).max() * np.abs(gamma * invstd).max())
    close(dgamma - 1.0, bn.weight.grad)
    close(dbeta + 2.0, bn.bias.grad)


def test_batchnorm_train_without_affine_or_running_stats(rng):
    x, dy = rand(rng, 4, 3, 5, 5), rand(rng, 4, 3, 5, 5)
    xt = leaf(x)
    yt = F.batch_norm(xt, None, None, None, None, training=True, eps=1e-3)
    yt.backward(torch.from_numpy(dy))
    y, mean, invstd = C.layers.batchnorm2d_forward_train(x, None, None, None, None, 0.1, 1e-3)
    close(y, yt)
    close(C.layers.batchnorm2d_backward(dy, x, None, mean, invstd, None, None), xt.grad)


def test_batchnorm_stats_survive_a_large_mean():
    # E[x^2] - E[x]^2 in float would lose every digit here; the shifted double sums must not.
    # Planes of 256 values (per-channel runs), 4x4 ones (flat runs, 300 images: folded twice) and
    # 45x100 ones (runs with several folds and a remainder).
    rng = np.random.default_rng(3)
    for shape in ((8, 2, 16, 16), (300, 3, 4, 4), (2, 2, 45, 100)):
        x = (1000.0 + 0.01 * rng.standard_normal(shape)).astype(np.float32)
        _, mean, invstd = C.layers.batchnorm2d_forward_train(x, None, None, None, None, 0.1, 0.0)
        x64 = x.astype(np.float64)
        close(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-6)
        close(invstd, 1.0 / np.sqrt(x64.var(axis=(0, 2, 3))), rtol=1e-4)


def test_batchnorm_backward_finite_differences(rng):
    # L = sum(y * r): dL/dx by central differences in float64 numpy vs the kernel.
    x, r = rand(rng, 3, 2, 3, 2), rand(rng, 3, 2, 3, 2)
    gamma, beta = rand(rng, 2), rand(rng, 2)

    def loss(xx):
        mu = xx.mean(axis=(0, 2, 3), keepdims=True)
        var = xx.var(axis=(0, 2, 3), keepdims=True)
        y = (xx - mu) / np.sqrt(var + 1e-5) * gamma[None, :, None, None] + beta[None, :, None, None]
        return float((y * r).sum())

    _, mean, invstd = C.layers.batchnorm2d_forward_train(x, gamma, beta, None, None, 0.1, 1e-5)
    dx = C.layers.batchnorm2d_backward(r, x, gamma, mean, invstd, None, None)
    x64, h = x.astype(np.float64), 1e-5
    for idx in [(0, 0, 0, 0), (1, 1, 2, 1), (2, 0, 1, 0), (2, 1, 2, 1)]:
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += h
        xm[idx] -= h
        fd = (loss(xp) - loss(xm)) / (2 * h)
        assert abs(dx[idx] - fd) <= 1e-3 * max(1.0, abs(fd)), (idx, dx[idx], fd)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 8, 3, 3), (0, 2, 3, 3)])
def test_batchnorm_eval_matches_torch(rng, shape):
    n, c, h, w = shape
    x, dy = rand(rng, *shape), rand(rng, *shape)
    gamma, beta, rm = rand(rng, c), rand(rng, c), rand(rng, c)
    rv = rng.uniform(0.5, 2.0, c).astype(np.float32)
    xt, gt, bt = leaf(x), leaf(gamma), leaf(beta)
    yt = F.batch_norm(xt, torch.from_numpy(rm), torch.from_numpy(rv), gt, bt, training=False, eps=1e-5)
    yt.backward(torch.from_numpy(dy))
    close(C.layers.batchnorm2d_forward_eval(x, gamma, beta, rm, rv, 1e-5), yt)
    dgamma, dbeta = np.zeros(c, np.float32), np.zeros(c, np.float32)
    dx = C.layers.batchnorm2d_backward_eval(dy, x, gamma, rv, 1e-5, dgamma, dbeta, rm)
    close(dx, xt.grad)
    close(dgamma, gt.grad)
    close(dbeta, bt.grad)
    # without parameter gradients, running_mean is not needed
    close(C.layers.batchnorm2d_backward_eval(dy, x, gamma, rv, 1e-5, None, None), xt.grad)


def test_batchnorm_bad_input(rng):
    x, g = rand(rng, 2, 3, 4, 4), rand(rng, 3)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        C.layers.batchnorm2d_forward_train(rand(rng, 1, 3, 1, 1), g, g, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        C.layers.batchnorm2d_forward_train(rand(rng, 0, 3, 4, 4), g, g, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="x: expected a 4-d array"):
        C.layers.batchnorm2d_forward_train(rand(rng, 2, 3, 4), g, g, rm, rv, 0.1, 1e-5)
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        C.layers.batchnorm2d_forward_train(x.astype(np.float64), g, g, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="gamma: expected shape \\(3,\\), got \\(4,\\)"):
        C.layers.batchnorm2d_forward_train(x, rand(rng, 4), g, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.layers.batchnorm2d_forward_train(x.transpose(0, 1, 3, 2), g, g, rm, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="read-only"):
        ro = rm.copy()
        ro.flags.writeable = False
        C.layers.batchnorm2d_forward_train(x, g, g, ro, rv, 0.1, 1e-5)
    with pytest.raises(ValueError, match="both"):
        C.layers.batchnorm2d_forward_train(x, g, g, rm, None, 0.1, 1e-5)
    with pytest.raises(ValueError, match="momentum"):
        C.layers.batchnorm2d_forward_train(x, g, g, rm, rv, float("nan"), 1e-5)
    with pytest.raises(ValueError, match="eps"):
        C.layers.batchnorm2d_forward_eval(x, g, g, rm, rv, -1.0)
    with pytest.raises(ValueError, match="running_var: expected shape"):
        C.layers.batchnorm2d_forward_eval(x, g, g, rm, rand(rng, 2), 1e-5)
    with pytest.raises(ValueError, match="dy: expected the shape of x"):
        C.layers.batchnorm2d_backward(rand(rng, 2, 3, 4, 5), x, g, rm, rv, None, None)
    with pytest.raises(ValueError, match="save_invstd"):
        C.layers.batchnorm2d_backward(x, x, g, rm, rand(rng, 5), None, None)
    with pytest.raises(TypeError, match="dgamma"):
        C.layers.batchnorm2d_backward(x, x, g, rm, rv, [0.0, 0.0, 0.0], None)
    with pytest.raises(ValueError, match="running_mean: required"):
        C.layers.batchnorm2d_backward_eval(x, x, g, rv, 1e-5, np.zeros(3, np.float32), None)


# ---------------------------------------------------------------------------------------------
# activations

# (name, torch forward, backward takes the forward output instead of the input)
ACTIVATIONS = [
    ("relu", torch.relu, True),
    ("relu6", F.relu6, False),
    ("hardswish", F.hardswish, False),
    ("hardsigmoid", F.hardsigmoid, False),
    ("sigmoid", torch.sigmoid, True),
]
# The boundaries where PyTorch's gradient conventions matter, plus values around them.
BOUNDARIES = np.array([-6.5, -6, -3.5, -3, -2.5, -1e-7, 0, 1e-7, 0.5, 2.9, 3, 3.1, 5.9, 6, 6.1, 9],
                      np.float32)


@pytest.mark.parametrize("name,fn,from_output", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 11, 13), (2, 70001)])
def test_activation_matches_torch(rng, name, fn, from_output, shape):
    x = rand(rng, *shape, scale=4.0)
    flat = x.reshape(-1)
    flat[: len(BOUNDARIES)] = BOUNDARIES[: flat.size]
    dy = rand(rng, *shape)
    xt = leaf(x)
    yt = fn(xt)
    yt.backward(torch.from_numpy(dy))
    y = getattr(C.layers, name + "_forward")(x)
    assert y.shape == x.shape and y.dtype == np.float32
    close(y, yt, atol=1e-6)
    dx = getattr(C.layers, name + "_backward")(dy, y if from_output else x)
    close(dx, xt.grad, atol=1e-6)


def test_activation_boundaries_exact():
    x = BOUNDARIES
    dy = np.ones_like(x)
    want = {
        "relu6": [(0 < v < 6) * 1.0 for v in x],
        # PyTorch 2.x: 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 for x >= 3
        "hardswish": [0.0 if v <= -3 else (v / 3 + 0.5 if v < 3 else 1.0) for v in x],
        "hardsigmoid": [1 / 6 if -3 < v < 3 else 0.0 for v in x],
    }
    for name, w in want.items():
        np.testing.assert_allclose(getattr(C.layers, name + "_backward")(dy, x), w, rtol=TOL["f32-elementwise"].rtol, atol=0)
    np.testing.assert_array_equal(C.layers.relu_backward(dy, C.layers.relu_forward(x)), (x > 0).astype(np.float32))


def test_hardswish_finite_differences(rng):
    x = rand(rng, 64, scale=3.0)
    x = x[np.abs(np.abs(x) - 3.0) > 0.05]  # away from the kinks
    h = 1e-2
    fd = (C.layers.hardswish_forward(x + h).astype(np.float64) - C.layers.hardswish_forward(x - h)) / (2 * h)
    np.testing.assert_allclose(C.layers.hardswish_backward(np.ones_like(x), x), fd, rtol=1e-3, atol=1e-3)


def test_activations_bad_input(rng):
    x = rand(rng, 3, 4)
    for name, _, _ in ACTIVATIONS:
        fwd, bwd = getattr(C.layers, name + "_forward"), getattr(C.layers, name + "_backward")
        with pytest.raises(TypeError, match="x: expected dtype float32, got float64"):
            fwd(x.astype(np.float64))
        with pytest.raises(TypeError, match="x: expected dtype float32, got int32"):
            fwd(x.astype(np.int32))
        with pytest.raises(TypeError, match="numpy.ndarray"):
            fwd([1.0, 2.0])
        with pytest.raises(ValueError, match="C-contiguous"):
            fwd(x.T)
        with pytest.raises(ValueError, match="dy: expected the shape"):
            bwd(rand(rng, 4, 3), x)
        assert fwd(np.zeros((0, 3), np.float32)).shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# pooling

# (shape, kernel, stride, padding)
POOL_CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 9, 7), (3, 3), (2, 2), (1, 1)),
    ((1, 4, 5, 5), (3, 3), (1, 1), (1, 1)),
    ((3, 2, 11, 6), (3, 2), (2, 1), (1, 0)),
    ((2, 2, 7, 9), (4, 5), (3, 2), (2, 2)),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0)),
    ((2, 5, 6, 13), (2, 3), (1, 3), (0, 1)),
]


@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_maxpool_matches_torch(rng, shape, k, s, p):
    x, xt = None, None
    x = rand(rng, *shape)
    xt = leaf(x)
    yt, it = F.max_pool2d(xt, k, s, p, return_indices=True)
    dy = rand(rng, *yt.shape)
    yt.backward(torch.from_numpy(dy))
    y, argmax = C.layers.maxpool2d_forward(x, k, s, p)
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(argmax, it.numpy())
    close(C.layers.maxpool2d_backward(dy, argmax, x.shape), xt.grad)


def test_maxpool_ties_infinities_and_nans_pick_like_torch():
    # integer values give many ties; -inf everywhere tests the start index
    x = np.random.default_rng(0).integers(0, 3, (2, 2, 7, 7)).astype(np.float32)
    x[0, 0] = -np.inf
    x[1, 1, 2, 2:4] = np.nan  # NaN wins, the last NaN of a window gives the index
    x[1, 0, 5, 5] = np.nan
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 1)]:
        y, a = C.layers.maxpool2d_forward(x, k, s, p)
        yt, it = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(a, it.numpy())


@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
def test_avgpool_matches_torch(rng, shape, k, s, p, include_pad):
    x = rand(rng, *shape)
    xt = leaf(x)
    yt = F.avg_pool2d(xt, k, s, p, count_include_pad=include_pad)
    dy = rand(rng, *yt.shape)
    yt.backward(torch.from_numpy(dy))
    y = C.layers.avgpool2d_forward(x, k, s, p, include_pad)
    close(y, yt)
    close(C.layers.avgpool2d_backward(dy, x.shape, k, s, p, include_pad), xt.grad)


def test_pool_defaults_and_int_arguments(rng):
    x = rand(rng, 2, 3, 6, 6)
    y, _ = C.layers.maxpool2d_forward(x, np.int64(2))  # stride defaults to the kernel, padding to 0
    np.testing.assert_array_equal(y, F.max_pool2d(torch.from_numpy(x), 2).numpy())
    close(C.layers.avgpool2d_forward(x, [3, 3]), F.avg_pool2d(torch.from_numpy(x), 3))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 16, 32, 32), (1, 1, 1, 1), (3, 2, 1, 9)])
def test_global_avgpool_matches_torch(rng, shape):
    x = rand(rng, *shape, offset=3.0)
    xt = leaf(x)
    yt = xt.mean(dim=(2, 3), keepdim=True)
    dy = rand(rng, *yt.shape)
    yt.backward(torch.from_numpy(dy))
    y = C.layers.global_avgpool2d_forward(x)
    assert y.shape == (shape[0], shape[1], 1, 1)
    close(y, yt)
    close(C.layers.global_avgpool2d_backward(dy, x.shape), xt.grad)
    close(C.layers.global_avgpool2d_backward(dy.reshape(shape[0], shape[1]), x.shape), xt.grad)


def test_pool_bad_input(rng):
    x = rand(rng, 2, 3, 6, 6)
    with pytest.raises(ValueError, match="padding: expected at most half the kernel"):
        C.layers.maxpool2d_forward(x, 2, 2, 2)
    with pytest.raises(ValueError, match="padding"):
        C.layers.avgpool2d_forward(x, 3, 1, -1)
    with pytest.raises(ValueError, match="stride: expected positive"):
        C.layers.maxpool2d_forward(x, 2, 0, 0)
    with pytest.raises(ValueError, match="kernel: expected positive"):
        C.layers.avgpool2d_forward(x, (0, 2), 1, 0)
    with pytest.raises(ValueError, match="below 2\\^31"):
        C.layers.maxpool2d_forward(x, 2**62, 1, 2**61)
    with pytest.raises(TypeError, match="seed"):
        C.layers.dropout_forward(x, 0.5, 1.5)
    with pytest.raises(ValueError, match="output would be empty"):
        C.layers.maxpool2d_forward(x, 7, 1, 0)
    with pytest.raises(TypeError, match="kernel: expected an int or a \\(h, w\\) pair"):
        C.layers.maxpool2d_forward(x, 2.0, 2, 0)
    with pytest.raises(ValueError, match="kernel: expected a \\(h, w\\) pair"):
        C.layers.maxpool2d_forward(x, (2, 2, 2), 2, 0)
    with pytest.raises(ValueError, match="x: expected a 4-d array"):
        C.layers.maxpool2d_forward(rand(rng, 3, 6, 6), 2, 2, 0)
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        C.layers.avgpool2d_forward(x.astype(np.float64), 2, 2, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.layers.global_avgpool2d_forward(x[:, :, ::2])
    with pytest.raises(ValueError, match="x: expected non-empty planes"):
        C.layers.global_avgpool2d_forward(rand(rng, 2, 3, 0, 4))
    y, a = C.layers.maxpool2d_forward(x, 2, 2, 0)
    with pytest.raises(TypeError, match="argmax: expected dtype int32, got int64"):
        C.layers.maxpool2d_backward(y, a.astype(np.int64), x.shape)
    with pytest.raises(ValueError, match="argmax: expected the shape of dy"):
        C.layers.maxpool2d_backward(y, a[:, :, :2].copy(), x.shape)
    bad = a.copy()
    bad[1, 2, 0, 0] = 36
    with pytest.raises(ValueError, match="argmax: expected indices in \\[0, H\\*W\\) = \\[0, 36\\)"):
        C.layers.maxpool2d_backward(y, bad, x.shape)
    bad[1, 2, 0, 0] = -1
    with pytest.raises(ValueError, match="argmax"):
        C.layers.maxpool2d_backward(y, bad, x.shape)
    with pytest.raises(ValueError, match="dy: expected shape \\(4, 3, \\*, \\*\\)"):
        C.layers.maxpool2d_backward(y, a, (4, 3, 6, 6))
    with pytest.raises(ValueError, match="x_shape: expected a tuple"):
        C.layers.maxpool2d_backward(y, a, (2, 3, 6))
    with pytest.raises(ValueError, match="x_shape: expected non-negative"):
        C.layers.avgpool2d_backward(y, (2, 3, -6, 6), 2, 2, 0)
    with pytest.raises(ValueError, match="dy: expected shape \\(2, 3, 3, 3\\), got \\(2, 3, 2, 3\\)"):
        C.layers.avgpool2d_backward(y[:, :, :2].copy(), x.shape, 2, 2, 0)
    with pytest.raises(ValueError, match="dy: expected shape \\(N, C, 1, 1\\)"):
        C.layers.global_avgpool2d_backward(rand(rng, 2, 3, 2, 1), x.shape)
    with pytest.raises(ValueError, match="dy: expected N, C"):
        C.layers.global_avgpool2d_backward(rand(rng, 2, 4, 1, 1), x.shape)
    # an empty batch is fine
    y0, a0 = C.layers.maxpool2d_forward(rand(rng, 0, 3, 6, 6), 2, 2, 0)
    assert y0.shape == (0, 3, 3, 3) and C.layers.maxpool2d_backward(y0, a0, (0, 3, 6, 6)).shape == (0, 3, 6, 6)


# ---------------------------------------------------------------------------------------------
# dropout, add, channel scale


def test_dropout_is_deterministic_across_thread_counts(rng):
    x = rand(rng, 64, 16, 33, 17)  # several parallel blocks
    saved = C.runtime.get_num_threads()
    try:
        C.runtime.set_num_threads(1)
        y1, m1 = C.layers.dropout_forward(x, 0.3, 1234)
        C.runtime.set_num_threads(2)
        y2, m2 = C.layers.dropout_forward(x, 0.3, 1234)
    finally:
        C.runtime.set_num_threads(saved)
    assert m1.dtype == np.uint8
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)
    _, m3 = C.layers.dropout_forward(x, 0.3, 1235)
    assert (m3 != m1).mean() > 0.3  # another seed, another mask
    # any Python int is a seed, taken modulo 2^64
    np.testing.assert_array_equal(C.layers.dropout_forward(x, 0.3, -1)[1], C.layers.dropout_forward(x, 0.3, 2**64 - 1)[1])


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_statistics_and_backward(rng, p):
    x = rng.uniform(1.0, 2.0, (200, 1000)).astype(np.float32)
    y, mask = C.layers.dropout_forward(x, p, 7)
    assert set(np.unique(mask)) <= {0, 1}
    keep = mask.mean()
    assert abs(keep - (1 - p)) < 5 * np.sqrt(p * (1 - p) / mask.size) + 1e-9
    np.testing.assert_allclose(y, x * mask / np.float32(1 - p), rtol=TOL["f32-elementwise"].rtol)
    assert abs(y.mean() / x.mean() - 1) < 0.01  # E[y] = x
    if p == 0.0:
        np.testing.assert_array_equal(y, x)
    dy = rand(rng, *x.shape)
    np.testing.assert_allclose(C.layers.dropout_backward(dy, mask, p), dy * mask / np.float32(1 - p), rtol=TOL["f32-elementwise"].rtol)


def test_dropout_bad_input(rng):
    x = rand(rng, 4, 5)
    for p in [1.0, -0.1, float("nan"), 1.5]:
        with pytest.raises(ValueError, match="p: expected a value in \\[0"):
            C.layers.dropout_forward(x, p, 0)
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        C.layers.dropout_forward(x.astype(np.float64), 0.5, 0)
    _, m = C.layers.dropout_forward(x, 0.5, 0)
    with pytest.raises(TypeError, match="mask: expected dtype uint8, got bool"):
        C.layers.dropout_backward(x, m.astype(bool), 0.5)
    with pytest.raises(ValueError, match="mask: expected the shape of dy"):
        C.layers.dropout_backward(x, m[:2].copy(), 0.5)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.layers.dropout_backward(x, m[:, ::2], 0.5)
    with pytest.raises(ValueError, match="p: expected"):
        C.layers.dropout_backward(x, m, 1.0)


def test_empty_batches_pass_through(rng):
    e = np.zeros((0, 3, 4, 4), np.float32)
    y, m = C.layers.dropout_forward(e, 0.5, 0)
    assert y.shape == e.shape and m.shape == e.shape
    assert C.layers.dropout_backward(e, m, 0.5).shape == e.shape
    assert C.layers.add_forward(e, e).shape == e.shape
    assert C.layers.channel_scale_forward(e, np.zeros((0, 3), np.float32)).shape == e.shape
    assert C.layers.global_avgpool2d_forward(e).shape == (0, 3, 1, 1)
    assert C.layers.avgpool2d_backward(np.zeros((0, 3, 2, 2), np.float32), e.shape, 2).shape == e.shape


def test_add_matches_numpy(rng):
    a, b = rand(rng, 3, 5, 7, 9), rand(rng, 3, 5, 7, 9)
    np.testing.assert_array_equal(C.layers.add_forward(a, b), a + b)
    with pytest.raises(ValueError, match="b: expected the shape of a \\(3, 5, 7, 9\\), got \\(3, 5, 7, 8\\)"):
        C.layers.add_forward(a, b[..., :8].copy())
    with pytest.raises(TypeError, match="b: expected dtype float32"):
        C.layers.add_forward(a, b.astype(np.float16))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 16, 8, 8), (1, 1, 1, 1)])
@pytest.mark.parametrize("s_rank", [2, 4])
def test_channel_scale_matches_torch(rng, shape, s_rank):
    n, c = shape[:2]
    x, dy = rand(rng, *shape), rand(rng, *shape)
    s = rng.uniform(0, 1, (n, c) if s_rank == 2 else (n, c, 1, 1)).astype(np.float32)
    xt, st = leaf(x), leaf(s)
    yt = xt * st.reshape(n, c, 1, 1)
    yt.backward(torch.from_numpy(dy))
    close(C.layers.channel_scale_forward(x, s), yt)
    dx, ds = C.layers.channel_scale_backward(dy, x, s)
    assert ds.shape == s.shape
    close(dx, xt.grad)
    close(ds, st.grad)


def test_channel_scale_bad_input(rng):
    x = rand(rng, 2, 3, 4, 4)
    with pytest.raises(ValueError, match="s: expected shape \\(2, 3\\) or \\(2, 3, 1, 1\\), got \\(3, 2\\)"):
        C.layers.channel_scale_forward(x, rand(rng, 3, 2))
    with pytest.raises(ValueError, match="s: expected shape"):
        C.layers.channel_scale_forward(x, rand(rng, 2, 3, 4))
    with pytest.raises(ValueError, match="x: expected a 4-d array"):
        C.layers.channel_scale_forward(rand(rng, 2, 3), rand(rng, 2, 3))
    with pytest.raises(ValueError, match="dy: expected the shape of x"):
        C.layers.channel_scale_backward(rand(rng, 2, 3, 4, 5), x, rand(rng, 2, 3))
    with pytest.raises(TypeError, match="s: expected dtype float32"):
        C.layers.channel_scale_backward(x, x, np.ones((2, 3)))


# ---------------------------------------------------------------------------------------------
# cross-entropy


@pytest.mark.parametrize("n,c", [(1, 2), (7, 10), (128, 100), (33, 1), (5, 1001)])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_cross_entropy_matches_torch(rng, n, c, eps):
    z = rand(rng, n, c, scale=5.0, offset=30.0)  # offset: the max shift must make this harmless
    y = rng.integers(0, c, n)
    zt = leaf(z)
    lt = F.cross_entropy(zt, torch.from_numpy(y), label_smoothing=eps)
    lt.backward()
    loss, dz = C.layers.cross_entropy(z, y, eps)
    assert isinstance(loss, float)
    assert abs(loss - lt.item()) <= RTOL * max(1.0, abs(lt.item()))
    close(dz, zt.grad, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
def test_cross_entropy_any_int_labels(rng, dtype):
    z = rand(rng, 6, 5)
    y = np.array([0, 4, 2, 3, 1, 4])
    want = C.layers.cross_entropy(z, y.astype(np.int64))
    got = C.layers.cross_entropy(z, y.astype(dtype))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


def test_cross_entropy_finite_differences(rng):
    z, y = rand(rng, 4, 6), rng.integers(0, 6, 4)
    _, dz = C.layers.cross_entropy(z, y, 0.2)
    h = 1e-2
    for idx in [(0, 0), (1, 3), (3, y[3]), (2, 5)]:
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        fd = (C.layers.cross_entropy(zp, y, 0.2)[0] - C.layers.cross_entropy(zm, y, 0.2)[0]) / (2 * h)
        assert abs(dz[idx] - fd) < 1e-4, (idx, dz[idx], fd)


def test_cross_entropy_is_deterministic_across_thread_counts(rng):
    z, y = rand(rng, 4096, 10), rng.integers(0, 10, 4096)
    saved = C.runtime.get_num_threads()
    try:
        C.runtime.set_num_threads(1)
        a = C.layers.cross_entropy(z, y, 0.1)
        C.runtime.set_num_threads(2)
        b = C.layers.cross_entropy(z, y, 0.1)
    finally:
        C.runtime.set_num_threads(saved)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_cross_entropy_bad_input(rng):
    z, y = rand(rng, 4, 3), np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match="labels: expected class indices in \\[0, 3\\), got 3 at index 2"):
        C.layers.cross_entropy(z, np.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="got -1 at index 0"):
        C.layers.cross_entropy(z, np.array([-1, 1, 2, 1]))
    with pytest.raises(ValueError, match="logits: expected a non-empty batch"):
        C.layers.cross_entropy(rand(rng, 0, 3), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="at least one class"):
        C.layers.cross_entropy(rand(rng, 2, 0), np.zeros(2, np.int64))
    bad = z.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="logits: expected finite values, got NaN or Inf in row 2"):
        C.layers.cross_entropy(bad, y)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="row 2"):
        C.layers.cross_entropy(bad, y)
    with pytest.raises(ValueError, match="logits: expected a 2-d array"):
        C.layers.cross_entropy(rand(rng, 4, 3, 1), y)
    with pytest.raises(TypeError, match="logits: expected dtype float32"):
        C.layers.cross_entropy(z.astype(np.float64), y)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.layers.cross_entropy(np.asfortranarray(z), y)
    with pytest.raises(TypeError, match="labels: expected an integer array"):
        C.layers.cross_entropy(z, y.astype(np.float32))
    with pytest.raises(ValueError, match="labels: expected shape \\(4,\\), got \\(3,\\)"):
        C.layers.cross_entropy(z, y[:3])
    with pytest.raises(ValueError, match="labels: expected a 1-d array"):
        C.layers.cross_entropy(z, y.reshape(2, 2))
    for eps in [-0.1, 1.1, float("nan")]:
        with pytest.raises(ValueError, match="label_smoothing"):
            C.layers.cross_entropy(z, y, eps)

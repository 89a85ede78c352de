"""edgeopt.nn.functional: the kernels called directly, against torch.nn.functional."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch_oracle import assert_close

import edgeopt.nn.functional as F
from edgeopt._check import check_pair


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_pair():
    assert check_pair("k", 3) == (3, 3) and check_pair("k", (2, 5)) == (2, 5) and check_pair("k", [1, 2]) == (1, 2)
    for bad in (1.5, (1, 2, 3), "3", True, (1, None)):
        with pytest.raises(TypeError, match="stride"):
            check_pair("stride", bad)


def test_conv2d_forward_backward_with_tuple_args(rng):
    x, w, b = randn(rng, 2, 4, 9, 8), randn(rng, 6, 2, 3, 2), randn(rng, 6)
    y = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), groups=2)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    yt = TF.conv2d(xt, wt, bt, stride=(2, 1), padding=(1, 0), groups=2)
    assert_close(y, yt, "conv2d")
    dy = randn(rng, *y.shape)
    dw, db = np.zeros_like(w), np.ones_like(b)  # db starts at 1: gradients accumulate
    dx = F.conv2d_backward(dy, x, w, dw, db, stride=(2, 1), padding=(1, 0), groups=2)
    yt.backward(torch.from_numpy(dy))
    assert_close(dx, xt.grad, "dx")
    assert_close(dw, wt.grad, "dw")
    assert_close(db - 1, bt.grad, "db")
    assert F.conv2d_backward(dy, x, w, dw, None, (2, 1), (1, 0), 2, need_dx=False) is None


def test_linear_accumulates(rng):
    x, w = randn(rng, 5, 3), randn(rng, 4, 3)
    y = F.linear(x, w)
    assert_close(y, x @ w.T, "linear")
    dy = randn(rng, 5, 4)
    dw = np.zeros_like(w)
    F.linear_backward(dy, x, w, dw)
    F.linear_backward(dy, x, w, dw)
    assert_close(dw, 2 * dy.T @ x, "dw accumulated twice")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_cross_entropy(smoothing, label_dtype, rng):
    logits = randn(rng, 7, 5) * 3
    labels = rng.integers(0, 5, 7).astype(label_dtype)
    loss, dlogits = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    lt = torch.from_numpy(logits).requires_grad_(True)
    ref = TF.cross_entropy(lt, torch.from_numpy(labels.astype(np.int64)), label_smoothing=smoothing)
    ref.backward()
    assert abs(float(loss) - ref.item()) <= 1e-5 * max(1.0, abs(ref.item()))
    assert_close(dlogits, lt.grad, "dlogits")


def test_cross_entropy_bad_labels(rng):
    with pytest.raises((ValueError, IndexError)):
        F.cross_entropy(randn(rng, 3, 4), np.array([0, 4, 1]))
    with pytest.raises(TypeError):
        F.cross_entropy(randn(rng, 3, 4), np.array([0.0, 1.0, 1.0]))


def test_pooling_and_elementwise(rng):
    x = randn(rng, 2, 3, 7, 6)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert_close(y, TF.max_pool2d(torch.from_numpy(x), 3, 2, 1), "max_pool2d")
    assert F.max_pool2d_backward(np.ones_like(y), idx, x.shape).shape == x.shape
    assert_close(F.avg_pool2d(x, (2, 3)), TF.avg_pool2d(torch.from_numpy(x), (2, 3)), "avg_pool2d")
    assert_close(F.global_avg_pool2d(x), x.mean(axis=(2, 3), keepdims=True), "global_avg_pool2d")
    s = randn(rng, 2, 3)
    assert_close(F.channel_scale(x, s), x * s[:, :, None, None], "channel_scale")
    assert_close(F.add(x, x), 2 * x, "add")
    assert_close(F.hardswish(x), TF.hardswish(torch.from_numpy(x)), "hardswish")


def test_functional_accepts_non_contiguous(rng):
    x = randn(rng, 6, 8)[:, ::2]
    assert not x.flags.c_contiguous
    assert_close(F.relu(x), np.maximum(x, 0), "relu of a strided view")


def test_functional_rejects_float64(rng):
    with pytest.raises(TypeError, match="float32"):
        F.relu(rng.standard_normal((2, 3)))


def test_dropout_functional(rng):
    x = randn(rng, 4, 100)
    y, mask = F.dropout(x, 0.5, seed=3)
    y2, mask2 = F.dropout(x, 0.5, seed=3)
    np.testing.assert_array_equal(y, y2)
    assert mask.dtype == np.uint8 and mask.shape == x.shape
    assert F.dropout(x, 0.5, training=False) == (x, None)
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match="p"):
            F.dropout(x, bad)

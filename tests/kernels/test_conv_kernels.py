"""edgeopt._core conv2d and linear kernels, forward and backward, against PyTorch (autograd) and
against the plain reference loops; on every ISA path this CPU has; deterministic with 2 threads;
and bad arguments raise errors that name the argument."""
import numpy as np
import pytest
import torch  # the oracle: a missing torch must fail the suite, not skip it

import edgeopt as eo
from edgeopt import _core
from isa_paths import ISAS
from shapes import mobilenetv1_conv_shapes, mobilenetv2_conv_shapes, resnet20_conv_shapes
from torch_oracle import assert_close


# (N, Cin, H, W, Cout, k, stride, padding, groups): odd sizes, stride 2, padding, groups,
# depthwise (multiplier 1 and 2), 1x1 (no-im2col path), batch below the thread count.
CONV_SHAPES = [
    (2, 3, 7, 9, 5, (3, 3), (1, 1), (1, 1), 1),
    (3, 16, 15, 15, 32, (3, 3), (2, 2), (1, 1), 1),
    (1, 8, 12, 10, 13, (5, 3), (1, 2), (2, 1), 1),
    (2, 8, 9, 9, 12, (3, 3), (1, 1), (0, 0), 4),
    (4, 12, 11, 11, 12, (3, 3), (1, 1), (1, 1), 12),
    (3, 12, 10, 10, 12, (3, 3), (2, 2), (1, 1), 12),
    (2, 6, 7, 7, 12, (3, 3), (1, 1), (1, 1), 6),
    (3, 24, 8, 8, 40, (1, 1), (1, 1), (0, 0), 1),
    (2, 16, 9, 9, 24, (1, 1), (2, 2), (0, 0), 1),
    (5, 32, 8, 8, 64, (3, 3), (1, 1), (1, 1), 1),
    # on AVX-512 the deploy runtime's direct conv: stride 2 with 64+ output pixels (8x9) and 8x8
    # outputs (dx too), with a bias
    (4, 8, 16, 17, 24, (3, 3), (2, 2), (1, 1), 1),
    (2, 16, 8, 8, 20, (3, 3), (1, 1), (1, 1), 1),
    # 1x1 on planes under 64 pixels: the batch's pixels as GEMM columns, read and written in
    # place (planes_gemm): 3x3, 7x7 and 1x1 planes, several row blocks and column chunks
    (5, 33, 3, 3, 70, (1, 1), (1, 1), (0, 0), 1),
    (3, 40, 7, 7, 13, (1, 1), (1, 1), (0, 0), 1),
    (40, 48, 4, 4, 600, (1, 1), (1, 1), (0, 0), 1),
    (130, 20, 1, 1, 30, (1, 1), (1, 1), (0, 0), 1),
]


def torch_conv(x, w, b, stride, padding, groups, dy):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if b is not None else None
    y = torch.nn.functional.conv2d(xt, wt, bt, stride, padding, 1, groups)
    y.backward(torch.tensor(dy))
    return (y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(),
            bt.grad.numpy() if bt is not None else None)


def make_conv(rng, shape, bias=True):
    N, cin, h, w, cout, k, s, p, g = shape
    x = rng.standard_normal((N, cin, h, w), dtype=np.float32)
    wt = rng.standard_normal((cout, cin // g, *k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32) if bias else None
    oh = (h + 2 * p[0] - k[0]) // s[0] + 1
    ow = (w + 2 * p[1] - k[1]) // s[1] + 1
    dy = rng.standard_normal((N, cout, oh, ow), dtype=np.float32)
    return x, wt, b, dy


def check_conv_against_torch(rng, shape, bias=True):
    x, w, b, dy = make_conv(rng, shape, bias)
    s, p, g = shape[6], shape[7], shape[8]
    y_t, dx_t, dw_t, db_t = torch_conv(x, w, b, s, p, g, dy)
    assert_close(_core.conv.conv2d_forward(x, w, b, s, p, g), y_t, f"y {shape}")
    dw0 = rng.standard_normal(w.shape, dtype=np.float32)  # grads accumulate into what is there
    dw = dw0.copy()
    db = np.ones(w.shape[0], np.float32) if bias else None
    dx = _core.conv.conv2d_backward(dy, x, w, dw, db, s, p, g)
    assert_close(dx, dx_t, f"dx {shape}")
    assert_close(dw - dw0, dw_t, f"dw {shape}")
    if bias:
        assert_close(db - 1, db_t, f"db {shape}")
    dw2 = np.zeros_like(w)
    assert _core.conv.conv2d_backward(dy, x, w, dw2, None, s, p, g, need_dx=False) is None
    assert_close(dw2, dw_t, f"dw (need_dx=False) {shape}")


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv2d_matches_torch(rng, shape):
    check_conv_against_torch(rng, shape, bias=shape[0] % 2 == 0)


def test_conv2d_matches_torch_on_random_shapes(rng):
    for _ in range(12):
        g = int(rng.choice([1, 1, 2, 3]))
        cin = g * int(rng.integers(1, 6))
        cout = g * int(rng.integers(1, 7))
        if rng.random() < 0.3:  # depthwise, sometimes with a channel multiplier
            g = cin = int(rng.integers(1, 9))
            cout = cin * int(rng.integers(1, 3))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        h = int(rng.integers(max(1, k[0] - 2 * p[0]), 14))
        w = int(rng.integers(max(1, k[1] - 2 * p[1]), 14))
        check_conv_against_torch(rng, (int(rng.integers(1, 5)), cin, h, w, cout, k, s, p, g))


@pytest.mark.parametrize("net", ["resnet20", "mobilenetv1", "mobilenetv2"])
def test_conv2d_matches_torch_on_network_shapes(rng, net):
    """Every distinct conv of the network, at batch 2: the list bench_conv_shapes.py times."""
    shapes = {"resnet20": resnet20_conv_shapes, "mobilenetv1": mobilenetv1_conv_shapes,
              "mobilenetv2": mobilenetv2_conv_shapes}[net](batch=2)
    for N, cin, h, w, cout, k, s, p, g, _ in shapes:
        check_conv_against_torch(rng, (N, cin, h, w, cout, (k, k), (s, s), (p, p), g))


@pytest.mark.parametrize("isa", ISAS)
def test_conv2d_and_linear_on_every_isa(rng, isa):
    saved = _core.runtime.active_isa()
    _core.runtime.set_isa(isa)
    try:
        for shape in (CONV_SHAPES[1], CONV_SHAPES[4], CONV_SHAPES[7], CONV_SHAPES[-2], CONV_SHAPES[-1]):
            check_conv_against_torch(rng, shape)
        check_linear_against_torch(rng, 7, 33, 13)
    finally:
        _core.runtime.set_isa(saved)


def test_conv2d_reference_matches_torch(rng):
    for shape in (CONV_SHAPES[0], CONV_SHAPES[3], CONV_SHAPES[6]):
        x, w, b, dy = make_conv(rng, shape)
        s, p, g = shape[6], shape[7], shape[8]
        y_t, dx_t, dw_t, db_t = torch_conv(x, w, b, s, p, g, dy)
        assert_close(_core.testing.conv2d_reference_forward(x, w, b, s, p, g), y_t, "reference y")
        dw, db = np.zeros_like(w), np.zeros_like(b)
        dx = _core.testing.conv2d_reference_backward(dy, x, w, dw, db, s, p, g)
        assert_close(dx, dx_t, "reference dx")
        assert_close(dw, dw_t, "reference dw")
        assert_close(db, db_t, "reference db")


def test_conv2d_is_deterministic_with_two_threads(rng):
    saved = eo.get_num_threads()
    eo.set_num_threads(2)
    try:
        for shape in ((6, 16, 12, 12, 16, (3, 3), (1, 1), (1, 1), 1),
                      (1, 16, 12, 12, 16, (3, 3), (1, 1), (1, 1), 1),
                      (6, 16, 12, 12, 16, (3, 3), (2, 2), (1, 1), 16),
                      (6, 16, 16, 16, 24, (3, 3), (2, 2), (1, 1), 1),  # the runtime's direct conv
                      (6, 16, 8, 8, 16, (3, 3), (1, 1), (1, 1), 1),
                      (6, 16, 5, 5, 24, (3, 3), (1, 1), (1, 1), 1)):  # small images: one GEMM per batch
            x, w, b, dy = make_conv(rng, shape)
            s, p, g = shape[6], shape[7], shape[8]
            outs = []
            for _ in range(2):
                dw, db = np.zeros_like(w), np.zeros_like(b)
                dx = _core.conv.conv2d_backward(dy, x, w, dw, db, s, p, g)
                outs.append((_core.conv.conv2d_forward(x, w, b, s, p, g), dx, dw, db))
            for a, c in zip(*outs):
                np.testing.assert_array_equal(a, c)
    finally:
        eo.set_num_threads(saved)


def test_small_plane_pointwise_conv_does_not_depend_on_the_thread_count(rng):
    """The batched 1x1 path blocks its GEMM by the thread count; every output is still one dot
    product in one depth order, so 1 and 2 threads give the same bytes."""
    saved = eo.get_num_threads()
    try:
        for shape in (CONV_SHAPES[-2], CONV_SHAPES[-4]):
            x, w, b, dy = make_conv(rng, shape)
            outs = []
            for threads in (1, 2):
                eo.set_num_threads(threads)
                dw, db = np.zeros_like(w), np.zeros_like(b)
                dx = _core.conv.conv2d_backward(dy, x, w, dw, db, (1, 1), (0, 0), 1)
                outs.append((_core.conv.conv2d_forward(x, w, b, (1, 1), (0, 0), 1), dx, dw, db))
            for a, c in zip(*outs):
                np.testing.assert_array_equal(a, c)
    finally:
        eo.set_num_threads(saved)


def test_conv2d_does_not_depend_on_the_thread_count(rng):
    """1 thread against 2, bit for bit, on the runtime's direct conv shapes (stride 2, 8x8) and an
    implicit-GEMM one: y of one image (the direct conv splits it over threads), y and dx of batches
    with an image per thread. (dw sums per-thread chunks of images, and with fewer images than
    threads the backward takes another path: those are deterministic per thread count only.)"""
    saved = eo.get_num_threads()
    try:
        for shape in ((1, 16, 16, 16, 24, (3, 3), (2, 2), (1, 1), 1), (1, 64, 8, 8, 64, (3, 3), (1, 1), (1, 1), 1),
                      (3, 64, 8, 8, 64, (3, 3), (1, 1), (1, 1), 1), (2, 16, 12, 12, 16, (3, 3), (1, 1), (1, 1), 1)):
            x, w, b, dy = make_conv(rng, shape)
            s, p, g = shape[6], shape[7], shape[8]
            outs = []
            for threads in (1, 2):
                eo.set_num_threads(threads)
                dw, db = np.zeros_like(w), np.zeros_like(b)
                dx = _core.conv.conv2d_backward(dy, x, w, dw, db, s, p, g)
                outs.append((_core.conv.conv2d_forward(x, w, b, s, p, g), dx, dw, db))
            for a, c in list(zip(*outs))[:2 if shape[0] >= 2 else 1]:
                np.testing.assert_array_equal(a, c, err_msg=str(shape))
    finally:
        eo.set_num_threads(saved)


def test_conv2d_empty_batch():
    x = np.zeros((0, 3, 5, 5), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = _core.conv.conv2d_forward(x, w, None, (1, 1), (1, 1), 1)
    assert y.shape == (0, 4, 5, 5)
    dw = np.full_like(w, 2.0)
    dx = _core.conv.conv2d_backward(np.zeros((0, 4, 5, 5), np.float32), x, w, dw, None, (1, 1), (1, 1), 1)
    assert dx.shape == (0, 3, 5, 5)
    assert (dw == 2.0).all()


def test_conv2d_accepts_int_stride_and_padding(rng):
    x, w, b, _ = make_conv(rng, CONV_SHAPES[1])
    np.testing.assert_array_equal(_core.conv.conv2d_forward(x, w, b, 2, 1, 1),
                                  _core.conv.conv2d_forward(x, w, b, (2, 2), (1, 1), 1))


def test_conv2d_bad_arguments():
    x = np.zeros((2, 4, 6, 6), np.float32)
    w = np.zeros((8, 4, 3, 3), np.float32)
    f = _core.conv.conv2d_forward
    with pytest.raises(TypeError, match="x"):
        f(x.astype(np.float64), w, None, 1, 1, 1)
    with pytest.raises(TypeError, match="w"):
        f(x, [[1.0]], None, 1, 1, 1)
    with pytest.raises(ValueError, match="x"):
        f(x[0], w, None, 1, 1, 1)
    with pytest.raises(ValueError, match="x"):
        f(x[:, :, :, ::2], w, None, 1, 1, 1)  # not contiguous
    with pytest.raises(ValueError, match="w"):
        f(x, np.zeros((8, 3, 3, 3), np.float32), None, 1, 1, 1)  # Cin != w.shape[1] * groups
    with pytest.raises(ValueError, match="groups"):
        f(x, np.zeros((8, 4, 3, 3), np.float32), None, 1, 1, 3)  # Cin not divisible
    with pytest.raises(ValueError, match="groups"):
        f(x, np.zeros((6, 1, 3, 3), np.float32), None, 1, 1, 4)  # Cout not divisible
    with pytest.raises(ValueError, match="groups"):
        f(x, w, None, 1, 1, 0)
    with pytest.raises(ValueError, match="w"):
        f(x, np.zeros((8, 4, 9, 9), np.float32), None, 1, 1, 1)  # kernel larger than padded input
    with pytest.raises(ValueError, match="stride"):
        f(x, w, None, 0, 1, 1)
    with pytest.raises(ValueError, match="stride"):
        f(x, w, None, (1, -2), 1, 1)
    with pytest.raises(ValueError, match="padding"):
        f(x, w, None, 1, -1, 1)
    with pytest.raises(ValueError, match="padding"):
        f(x, w, None, 1, (1, 1, 1), 1)
    with pytest.raises(TypeError, match="stride"):
        f(x, w, None, 1.5, 1, 1)
    with pytest.raises(ValueError, match="b"):
        f(x, w, np.zeros(7, np.float32), 1, 1, 1)
    with pytest.raises(TypeError, match="b"):
        f(x, w, np.zeros(8, np.int32), 1, 1, 1)
    with pytest.raises(ValueError, match="x"):
        f(np.zeros((2, 0, 6, 6), np.float32), np.zeros((8, 0, 3, 3), np.float32), None, 1, 1, 1)
    with pytest.raises(ValueError, match="w"):
        f(x, np.zeros((0, 4, 3, 3), np.float32), None, 1, 1, 1)

    dy = np.zeros((2, 8, 6, 6), np.float32)
    dw, db = np.zeros_like(w), np.zeros(8, np.float32)
    bwd = _core.conv.conv2d_backward
    with pytest.raises(ValueError, match="dy"):
        bwd(np.zeros((2, 8, 5, 6), np.float32), x, w, dw, db, 1, 1, 1)
    with pytest.raises(ValueError, match="dw"):
        bwd(dy, x, w, np.zeros((8, 4, 3, 2), np.float32), db, 1, 1, 1)
    with pytest.raises(ValueError, match="db"):
        bwd(dy, x, w, dw, np.zeros(9, np.float32), 1, 1, 1)
    ro = np.zeros_like(w)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="dw"):
        bwd(dy, x, w, ro, db, 1, 1, 1)
    with pytest.raises(TypeError, match="db"):
        bwd(dy, x, w, dw, np.zeros(8, np.float64), 1, 1, 1)
    assert (dw == 0).all() and (db == 0).all()


def check_linear_against_torch(rng, N, fin, fout, bias=True):
    x = rng.standard_normal((N, fin), dtype=np.float32)
    w = rng.standard_normal((fout, fin), dtype=np.float32)
    b = rng.standard_normal(fout, dtype=np.float32) if bias else None
    dy = rng.standard_normal((N, fout), dtype=np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(torch.tensor(dy))
    assert_close(_core.linear.linear_forward(x, w, b), yt, f"linear y {N, fin, fout}")
    dw0 = rng.standard_normal(w.shape, dtype=np.float32)
    dw = dw0.copy()
    db = np.ones(fout, np.float32) if bias else None
    dx = _core.linear.linear_backward(dy, x, w, dw, db)
    assert_close(dx, xt.grad, f"linear dx {N, fin, fout}")
    assert_close(dw - dw0, wt.grad, f"linear dw {N, fin, fout}")
    if bias:
        assert_close(db - 1, bt.grad, f"linear db {N, fin, fout}")
    assert _core.linear.linear_backward(dy, x, w, np.zeros_like(w), None, need_dx=False) is None


@pytest.mark.parametrize("N,fin,fout", [(1, 1, 1), (3, 7, 5), (17, 33, 10), (128, 64, 100), (64, 512, 13)])
def test_linear_matches_torch(rng, N, fin, fout):
    check_linear_against_torch(rng, N, fin, fout, bias=fout != 5)


def test_linear_empty_batch():
    w = np.ones((3, 4), np.float32)
    assert _core.linear.linear_forward(np.zeros((0, 4), np.float32), w, None).shape == (0, 3)
    dw = np.zeros_like(w)
    dx = _core.linear.linear_backward(np.zeros((0, 3), np.float32), np.zeros((0, 4), np.float32), w, dw, None)
    assert dx.shape == (0, 4) and (dw == 0).all()


def test_linear_bad_arguments():
    x, w = np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="x"):
        _core.linear.linear_forward(x.astype(np.float16), w, None)
    with pytest.raises(ValueError, match="w"):
        _core.linear.linear_forward(x, np.zeros((3, 5), np.float32), None)
    with pytest.raises(ValueError, match="x"):
        _core.linear.linear_forward(x[None], w, None)
    with pytest.raises(ValueError, match="b"):
        _core.linear.linear_forward(x, w, np.zeros(4, np.float32))
    dy, dw = np.zeros((2, 3), np.float32), np.zeros_like(w)
    with pytest.raises(ValueError, match="dy"):
        _core.linear.linear_backward(np.zeros((2, 4), np.float32), x, w, dw, None)
    with pytest.raises(ValueError, match="dw"):
        _core.linear.linear_backward(dy, x, w, np.zeros((4, 3), np.float32), None)
    with pytest.raises(ValueError, match="db"):
        _core.linear.linear_backward(dy, x, w, dw, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="x"):
        _core.linear.linear_backward(dy, np.asfortranarray(np.zeros((2, 4), np.float32)), w, dw, None)

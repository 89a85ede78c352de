"""Depthwise convolution for training (f32-dwconv/train.h): forward, input and weight gradients
against PyTorch and against the plain reference loops, at every geometry issue 12 names (kernels
3/5/7, strides 1 and 2, paddings from 0 to past the kernel, odd sizes such as 7x7 and 9x11, batch
1, channel counts that are not multiples of 16, channel multiplier 1 and 2), on every ISA path this
CPU has; results that do not depend on the thread count; bad geometries rejected with a clear
error."""
import itertools

import numpy as np
import pytest
import torch  # the oracle: a missing torch must fail the suite, not skip it

import edgeopt as eo
from edgeopt import _core
from torch_oracle import assert_close

# (N, C, H, W, multiplier, k, stride, padding)
GEOMETRIES = [
    (n, c, h, w, 1, k, s, p)
    for (n, c, (h, w)), k, s in itertools.product(
        [(2, 5, (7, 7)), (1, 17, (9, 11)), (3, 24, (16, 16))], (3, 5, 7), (1, 2))
    for p in sorted({0, (k - 1) // 2, k - 1})
    if h + 2 * p >= k and w + 2 * p >= k
] + [
    (2, 3, 8, 8, 2, 3, 1, 1),    # channel multiplier 2
    (2, 3, 9, 7, 2, 5, 2, 2),
    (1, 6, 4, 4, 1, 3, 1, 3),    # padding past the kernel (dx crops the dilated dy)
    (2, 4, 5, 6, 1, 3, 2, 4),
    (2, 7, 1, 1, 1, 3, 1, 1),    # 1x1 image
    (3, 33, 4, 4, 1, 3, 2, 1),   # MobileNet's small stages
    # small outputs with batches past a vector
    (16, 20, 4, 4, 1, 3, 1, 1),
    (9, 12, 2, 2, 1, 3, 1, 1),
    (16, 8, 4, 4, 1, 3, 2, 1),
    (5, 6, 5, 5, 1, 5, 2, 2),
    # stride 2 from 16 columns up (the parity data-gradient kernel): odd widths and heights
    (2, 5, 17, 19, 1, 3, 2, 1),
    (2, 18, 9, 33, 1, 5, 2, 0),
    (1, 3, 16, 32, 1, 7, 2, 6),
]


def _data(rng, g):
    n, c, h, w, m, k, s, p = g
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((c * m, 1, k, k), dtype=np.float32)
    b = rng.standard_normal(c * m, dtype=np.float32)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, c * m, oh, ow), dtype=np.float32)
    return x, wt, b, dy


def _torch(x, w, b, dy, s, p, groups):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.conv2d(xt, wt, bt, s, p, 1, groups)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _edgeopt(x, w, b, dy, s, p, groups, reference=False):
    fwd = _core.testing.conv2d_reference_forward if reference else _core.conv.conv2d_forward
    bwd = _core.testing.conv2d_reference_backward if reference else _core.conv.conv2d_backward
    y = fwd(x, w, b, s, p, groups)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    dx = bwd(dy, x, w, dw, db, s, p, groups)
    return y, dx, dw, db


@pytest.mark.parametrize("g", GEOMETRIES, ids=lambda g: "n%d_c%d_%dx%d_m%d_k%d_s%d_p%d" % g)
def test_depthwise_matches_torch_and_reference_on_every_isa(rng, isa, g):
    x, w, b, dy = _data(rng, g)
    s, p, groups = g[6], g[7], g[1]
    want = _torch(x, w, b, dy, s, p, groups)
    ref = _edgeopt(x, w, b, dy, s, p, groups, reference=True)
    got = _edgeopt(x, w, b, dy, s, p, groups)
    for name, a, r, t in zip(("y", "dx", "dw", "db"), got, ref, want):
        assert_close(a, t, f"{name} vs torch {g} {isa}")
        assert_close(a, r, f"{name} vs reference {g} {isa}")


def test_depthwise_weight_gradient_accumulates(rng):
    x, w, b, dy = _data(rng, (2, 5, 7, 7, 1, 3, 1, 1))
    dw0 = rng.standard_normal(w.shape, dtype=np.float32)
    dw = dw0.copy()
    _core.conv.conv2d_backward(dy, x, w, dw, None, 1, 1, 5)
    _, _, dw_t, _ = _torch(x, w, b, dy, 1, 1, 5)
    assert_close(dw - dw0, dw_t, "accumulated dw")


@pytest.mark.parametrize("g", [(5, 40, 16, 16, 1, 3, 1, 1), (4, 24, 9, 11, 1, 5, 2, 2),
                               (3, 6, 8, 8, 2, 3, 1, 1)])
def test_depthwise_does_not_depend_on_the_thread_count(rng, g):
    x, w, b, dy = _data(rng, g)
    saved = eo.get_num_threads()
    outs = []
    try:
        for threads in (1, 2, 2):
            eo.set_num_threads(threads)
            outs.append(_edgeopt(x, w, b, dy, g[6], g[7], g[1]))
    finally:
        eo.set_num_threads(saved)
    for other in outs[1:]:
        for a, c in zip(outs[0], other):
            np.testing.assert_array_equal(a, c)


def test_depthwise_bad_geometry_raises():
    x = np.zeros((1, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _core.conv.conv2d_forward(x, np.zeros((4, 1, 7, 7), np.float32), None, 1, 1, 4)
    with pytest.raises(ValueError, match="groups"):
        _core.conv.conv2d_forward(x, np.zeros((6, 1, 3, 3), np.float32), None, 1, 1, 3)
    with pytest.raises(ValueError, match="smaller than the .padded. kernel"):
        eo.nn.Conv2d(4, 4, 7, padding=1, groups=4)(x)
    with pytest.raises(ValueError, match="groups"):
        eo.nn.Conv2d(4, 6, 3, groups=4)

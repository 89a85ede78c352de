"""Binary and low-bit kernels (edgeopt._core.b1_*, lowbit_*): XNOR-popcount conv and linear must
equal, bit for bit, a numpy computation over sign values written here (sign(0) = +1, zero / +1 /
-1 padding), on every ISA path this CPU has; low-bit packing must produce the byte layout computed
here, and the unpack-while-packing GEMM must match numpy; bad input raises a Python error."""
import numpy as np
import pytest

from edgeopt import _core

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65]



def sign(a):
    return np.where(a >= 0, 1, -1).astype(np.int64)


def values(rng, shape):
    v = rng.standard_normal(shape).astype(np.float32)
    v.reshape(-1)[::7] = 0.0  # sign(0) = +1 everywhere
    return v


def epilogue(dot, alpha, bias, lo, hi, axis, residual=None):
    """alpha * float32(dot), then + bias, then + residual, in float32 (separate multiply and adds,
    like the kernels)."""
    shape = [1] * dot.ndim
    shape[axis] = -1
    y = alpha.reshape(shape).astype(np.float32) * dot.astype(np.float32)
    if bias is not None:
        y = y + bias.reshape(shape).astype(np.float32)
    if residual is not None:
        y = y + residual
    return np.clip(y, np.float32(lo), np.float32(hi)).astype(np.float32)


def numpy_b1_conv(x, w, alpha, bias, stride, pad, pad_value, lo, hi, residual=None, threshold=None):
    n, c, h, wd = x.shape
    cout, _, kh, kw = w.shape
    sx = sign(x) if threshold is None else np.where(x >= threshold[None, :, None, None], 1, -1)
    xs = np.pad(sx, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(xs, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    dot = np.einsum("ncpqij,ocij->nopq", win, sign(w))
    return epilogue(dot, alpha, bias, lo, hi, axis=1, residual=residual)


CONV_CASES = [  # (batch, cin, h, w, cout, k, stride, pad, pad_value)
    (1, 1, 1, 1, 1, 1, 1, 0, 0), (1, 3, 5, 7, 4, 3, 1, 1, 0), (2, 16, 8, 8, 17, 3, 1, 1, 0),
    (1, 64, 8, 8, 16, 3, 1, 1, 1), (1, 65, 9, 7, 9, 3, 2, 1, -1), (1, 33, 10, 10, 65, 1, 1, 0, 0),
    (1, 128, 6, 6, 64, 3, 1, 1, 0), (3, 8, 15, 17, 5, 5, 2, 2, 1), (1, 10, 4, 4, 3, 3, 1, 2, -1),
    (1, 63, 16, 16, 31, 3, 1, 1, 0),
    # stride 2 on the direct path: resnet20's downsampling conv and 1x1 shortcut, and an odd width
    # with two words per pixel
    (1, 16, 32, 32, 32, 3, 2, 1, 0), (1, 16, 32, 32, 32, 1, 2, 0, -1), (2, 40, 13, 35, 9, 3, 2, 1, 1),
    # 16-bit planes (3x3, stride 1, at most 16 channels): resnet20's first stage and a row tail
    (1, 16, 32, 32, 16, 3, 1, 1, 0), (2, 5, 6, 37, 11, 3, 1, 1, 1),
    # two rows per vector (3x3, stride 1, rows of at most 8 pixels): 8 and 7 pixels wide
    (1, 64, 8, 8, 64, 3, 1, 1, 0), (2, 40, 7, 7, 9, 3, 1, 1, -1), (1, 8, 7, 5, 9, 3, 1, 1, 0),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_b1_conv2d_matches_numpy_bit_for_bit(isa, case, rng):
    b, cin, h, wd, cout, k, stride, pad, pv = case
    x = values(rng, (b, cin, h, wd))
    w = values(rng, (cout, cin, k, k))
    bias = rng.standard_normal(cout).astype(np.float32) if cout % 2 else None
    act, lo, hi = ("relu", 0, np.inf) if cin % 2 else ("none", -np.inf, np.inf)
    packed = _core.testing.b1_conv2d_pack(w)
    alpha = np.abs(w).reshape(cout, -1).astype(np.float64).mean(1).astype(np.float32)
    np.testing.assert_array_equal(packed.alpha, alpha)
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    res = values(rng, (b, cout, oh, ow)) if (h + cout) % 2 else None  # a fused skip connection
    thr = values(rng, (cin,)) if (wd + cin) % 2 else None           # per-channel sign thresholds
    if thr is not None:
        x[0, :, 0, 0] = thr   # x == threshold: +1
    got = _core.testing.b1_conv2d(x, packed, bias, stride, pad, pv, act, res, thr)
    want = numpy_b1_conv(x, w, alpha, bias, stride, pad, pv, lo, hi, res, thr)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        _core.testing.b1_conv2d_reference(x, w, alpha, bias, stride, pad, pv, act, res, thr), want)


def test_b1_linear_matches_numpy_bit_for_bit(isa, rng):
    for i, m in enumerate(SIZES[::2]):
        for j, n in enumerate(SIZES):
            k = SIZES[(i * 5 + j * 3) % len(SIZES)] * (1 + j % 3)
            x, w = values(rng, (m, k)), values(rng, (n, k))
            alpha = (np.abs(rng.standard_normal(n)) + 0.01).astype(np.float32)
            bias = rng.standard_normal(n).astype(np.float32) if j % 2 else None
            got = _core.testing.b1_linear(x, _core.testing.b1_linear_pack(w, alpha), bias, "relu6" if i % 2 else "none")
            lo, hi = (0, 6) if i % 2 else (-np.inf, np.inf)
            want = epilogue(sign(x) @ sign(w).T, alpha, bias, lo, hi, axis=1)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} m={m} n={n} k={k}")


def test_b1_bad_input_raises(rng):
    w = values(rng, (4, 3, 3, 3))
    p = _core.testing.b1_conv2d_pack(w)
    x = values(rng, (1, 3, 5, 5))
    with pytest.raises(ValueError, match="pad_value"):
        _core.testing.b1_conv2d(x, p, None, 1, 1, 2)
    with pytest.raises(ValueError, match="x: expected 3 input channels"):
        _core.testing.b1_conv2d(values(rng, (1, 4, 5, 5)), p)
    with pytest.raises(ValueError, match="stride"):
        _core.testing.b1_conv2d(x, p, None, 0, 1)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        _core.testing.b1_conv2d(values(rng, (1, 3, 1, 1)), p)
    with pytest.raises(ValueError, match="residual: expected shape"):
        _core.testing.b1_conv2d(x, p, None, 1, 1, 0, "none", values(rng, (1, 4, 5, 4)))
    with pytest.raises(ValueError, match="threshold: expected shape"):
        _core.testing.b1_conv2d(x, p, None, 1, 1, 0, "none", None, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="alpha: expected shape"):
        _core.testing.b1_conv2d_pack(w, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        _core.testing.b1_linear(np.zeros((2, 5), np.float64), _core.testing.b1_linear_pack(values(rng, (3, 5))))
    with pytest.raises(ValueError, match="x: expected shape"):
        _core.testing.b1_linear(np.zeros((2, 6), np.float32), _core.testing.b1_linear_pack(values(rng, (3, 5))))


# ---------------------------------------------------------------------------------------- low-bit

def numpy_lowbit_pack(q, bits):
    rows, k = q.shape
    fields = (q > 0).astype(np.uint32) if bits == 1 else (q.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint32)
    out = np.zeros((rows, (k * bits + 7) // 8), np.uint32)
    for t in range(k):
        out[:, t * bits // 8] |= fields[:, t] << ((t * bits) % 8)
    return out.astype(np.uint8)


def random_codes(rng, shape, bits):
    if bits == 1:
        return rng.choice(np.array([-1, 1], np.int8), shape)
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape, dtype=np.int8)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_lowbit_pack_layout_and_round_trip(bits, rng):
    for rows, k in [(1, 1), (3, 5), (8, 17), (5, 64), (2, 65)]:
        q = random_codes(rng, (rows, k), bits)
        packed = _core.testing.lowbit_pack(q, bits)
        np.testing.assert_array_equal(packed, numpy_lowbit_pack(q, bits))
        np.testing.assert_array_equal(_core.testing.lowbit_unpack(packed, k, bits), q)
        scale = rng.random(rows).astype(np.float32)
        np.testing.assert_array_equal(_core.testing.lowbit_unpack(packed, k, bits, scale),
                                      scale[:, None] * q.astype(np.float32))


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_lowbit_sgemm_matches_numpy(isa, bits, rng):
    for m, n, k in [(1, 1, 1), (5, 9, 7), (16, 64, 65), (33, 10, 400)]:
        q = random_codes(rng, (m, k), bits)
        scale = rng.random(m).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        got = _core.testing.lowbit_sgemm(_core.testing.lowbit_pack(q, bits), k, bits, scale, b)
        want = (scale[:, None].astype(np.float64) * q) @ b.astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * k * (1 << bits))


def test_lowbit_bad_input_raises():
    with pytest.raises(ValueError, match="bits: expected 1, 2 or 4"):
        _core.testing.lowbit_pack(np.zeros((2, 2), np.int8), 3)
    with pytest.raises(ValueError, match="q: 2-bit codes must be in"):
        _core.testing.lowbit_pack(np.full((2, 2), 2, np.int8), 2)
    with pytest.raises(ValueError, match="q: 1-bit codes must be -1 or"):
        _core.testing.lowbit_pack(np.zeros((2, 2), np.int8), 1)
    with pytest.raises(ValueError, match="packed: expected shape"):
        _core.testing.lowbit_unpack(np.zeros((2, 3), np.uint8), 7, 4)
    with pytest.raises(ValueError, match="b: expected shape"):
        _core.testing.lowbit_sgemm(np.zeros((2, 1), np.uint8), 2, 4, np.ones(2, np.float32),
                           np.zeros((3, 4), np.float32))

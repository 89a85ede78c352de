"""int8-full kernels through the bindings (cpp/bindings/register_qs8_ops.cpp): every fast path
equals the plain reference bit for bit, the kernels equal numpy simulations of the float32
requantization y = clamp(rint(float32(acc) * scale) + zp) and of the float32 fma add written here,
hand-computed cases pin down rounding half to even, and bad arguments raise clear Python errors.
(The exhaustive per-path edge-shape sweep is the C++ test cpp/tests/test_qs8_ops.cc, run by
test_cpp_kernels.py.)"""
import numpy as np
import pytest

from edgeopt import _core, quant
from edgeopt.quant import fma32
from int8_sim import avgpool2d, requantize, requantize_zp_in_float

GEMM_PATHS = list(_core.testing.qgemm_paths())
OP_ISAS = ["scalar"] + (["avx512"] if _core.runtime.cpu_isa() == "avx512" else [])
F32 = np.float32

CONV_CASES = [  # N, H, W, cin, cout, k, stride, padding, groups
    (1, 8, 8, 3, 16, 3, 1, 1, 1),
    (2, 7, 9, 17, 33, 3, 2, 1, 1),
    (1, 6, 6, 64, 70, 1, 1, 0, 1),
    (1, 9, 9, 24, 24, 3, 1, 1, 24),    # depthwise
    (2, 10, 10, 40, 40, 5, 2, 2, 40),  # depthwise 5x5 stride 2
    (1, 6, 6, 8, 12, 3, 1, 0, 4),      # grouped
]


def numpy_add(a, b, p):
    """y = clamp(rint(fma(a, a_scale, fma(b, b_scale, offset))), qmin, qmax) in float32, each fma
    rounding once (quant.fma32 computes it exactly)."""
    v = fma32(a, F32(p["a_scale"]), fma32(b, F32(p["b_scale"]), F32(p["offset"])))
    return np.clip(np.rint(v).astype(np.float64), p["qmin"], p["qmax"]).astype(np.uint8)


def _add_params(rng, a_zp):
    """Random float32 add factors (edgeopt.quant.add_scales) with r_a + r_b < 1, so that sums of
    two full-range inputs mostly stay inside [0, 255]."""
    s_a, s_b, s_y = rng.uniform(0.02, 0.05), rng.uniform(0.02, 0.05), rng.uniform(0.1, 0.12)
    r_a, r_b, off = quant.add_scales(s_a, a_zp, s_b, int(rng.integers(0, 256)), s_y, int(rng.integers(64, 192)))
    return dict(a_scale=float(r_a), b_scale=float(r_b), offset=float(off), qmin=0, qmax=255)


def numpy_conv_acc(x, w, zp, pad):
    """int64 accumulators of a stride-1, groups-1 convolution of x u8 NHWC (zero point zp, padded
    with zp) and w (cout, k, k, cin)."""
    N, H, W, _ = x.shape
    k = w.shape[1]
    OH, OW = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    xp = np.pad(x.astype(np.int64) - zp, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    acc = np.zeros((N, OH, OW, w.shape[0]), np.int64)
    for i in range(k):
        for j in range(k):
            acc += xp[:, i:i + OH, j:j + OW] @ w[:, i, j, :].T.astype(np.int64)
    return acc


@pytest.mark.parametrize("case", CONV_CASES)
def test_qs8_conv2d_every_path_equals_reference(case, rng):
    N, H, W, cin, cout, k, s, p, g = case
    x = rng.integers(0, 256, (N, H, W, cin), dtype=np.uint8)
    w = rng.integers(-127, 128, (cout, k, k, cin // g), dtype=np.int8)
    bias = rng.integers(-5000, 5000, cout).astype(np.int32)
    scale = (rng.uniform(0.5, 1.0, cout) * 2.0**-9).astype(F32)
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    res = rng.integers(0, 256, (N, OH, OW, cout), dtype=np.uint8)
    lut = rng.integers(0, 256, 256, dtype=np.uint8)
    common = dict(stride=(s, s), padding=(p, p), groups=g)
    for extra in ({}, dict(residual=res, add=_add_params(rng, 77)), dict(lut=lut)):
        ref = _core.testing.qs8_conv2d(x, w, bias, scale, 5, 77, 0, 255, **common, **extra, reference=True)
        assert 0 < np.mean((ref > 0) & (ref < 255))
        for path in GEMM_PATHS:
            for isa in OP_ISAS:
                y = _core.testing.qs8_conv2d(x, w, bias, scale, 5, 77, 0, 255, **common, **extra,
                                             path=path, isa=isa)
                np.testing.assert_array_equal(y, ref, err_msg=f"path={path} isa={isa} {extra.keys()}")


def test_qs8_conv2d_matches_a_numpy_convolution(rng):
    # small activations and weights so that scale 0.5 (a tie at every odd accumulator) stays in range
    x = rng.integers(90, 111, (2, 6, 5, 4), dtype=np.uint8)
    w = rng.integers(-4, 5, (3, 3, 3, 4), dtype=np.int8)
    w[0] = rng.integers(-1, 2, (3, 3, 4))  # the channel that gets scale 3.0 below
    zp = 100
    acc = numpy_conv_acc(x, w, zp, 1)
    assert np.any(acc % 2 != 0)
    want = requantize(acc, 0.5, 128)
    assert np.mean((want > 0) & (want < 255)) > 0.5
    for path in GEMM_PATHS:
        y = _core.testing.qs8_conv2d(x, w, None, 0.5, zp, 128, 0, 255, stride=(1, 1), padding=(1, 1), path=path)
        np.testing.assert_array_equal(y, want, err_msg=path)

    # per-channel scales, one of them > 1, a bias, then the residual add and a lookup table
    scale = np.array([3.0, 0.1, 0.5], F32)
    bias = np.array([7, -20, 3], np.int32)
    res = rng.integers(0, 256, want.shape, dtype=np.uint8)
    p = _add_params(rng, 128)
    lut = rng.integers(0, 256, 256, dtype=np.uint8)
    y0 = requantize(acc + bias, scale, 128)
    assert np.mean((y0[..., 0] > 0) & (y0[..., 0] < 255)) > 0.5  # the 3.0 channel is not all saturated
    want = lut[numpy_add(y0, res, p)]
    for path in GEMM_PATHS:
        for isa in OP_ISAS:
            y = _core.testing.qs8_conv2d(x, w, bias, scale, zp, 128, 0, 255, stride=(1, 1), padding=(1, 1),
                                         residual=res, add=p, lut=lut, path=path, isa=isa)
            np.testing.assert_array_equal(y, want, err_msg=f"path={path} isa={isa}")


def test_qs8_quantize_and_dequantize_equal_numpy(rng):
    s, zp = F32(0.1), 97
    x = (rng.standard_normal((2, 3, 5, 4)) * 3).astype(F32)
    x[0, 0, 0, :3] = [F32(0.5) / s, 1e9, -1e9]
    # (k + 0.5) * 0.1 and their float32 neighbours: near ties, where the float32 quotient x / s,
    # x * float32(1 / s) and the float64 quotient round to different integers
    t = ((np.arange(-90, 150) + 0.5) * 0.1).astype(F32)
    near = np.concatenate([t, np.nextafter(t, F32(np.inf)), np.nextafter(t, F32(-np.inf))]).reshape(2, 9, 8, 5)
    assert np.sum(np.rint(near / s) != np.rint(near * F32(1 / s))) > 10, "must tell division from reciprocal"
    assert np.sum(np.rint(near / s) != np.rint(near.astype(np.float64) / np.float64(s))) > 10
    for x in (x, near):
        q = _core.testing.qs8_quantize(x, float(s), zp)
        want = np.clip(np.rint(x / s), -zp, 255 - zp) + zp        # float32 quotient, half to even
        np.testing.assert_array_equal(q, want.astype(np.uint8).transpose(0, 2, 3, 1))
        f = _core.testing.qs8_dequantize(q, 0.1, zp)
        np.testing.assert_array_equal(f, ((q.astype(np.int32) - zp).astype(F32) * s).transpose(0, 3, 1, 2))
    # by hand, scale 0.5, zero point 100: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 1.5 -> 2, 0.5 -> 0,
    # -0.5 -> 0, 600 and -600 clamp
    x = np.array([1.25, 1.75, -1.25, 0.75, 0.25, -0.25, 300.0, -300.0], F32).reshape(1, 8, 1, 1)
    q = _core.testing.qs8_quantize(x, 0.5, 100)
    np.testing.assert_array_equal(q.reshape(-1), [102, 104, 98, 102, 100, 100, 255, 0])


@pytest.mark.parametrize("isa", OP_ISAS)
def test_qs8_add_lut_channel_scale_equal_reference(isa, rng):
    a = rng.integers(0, 256, (3, 5, 7, 19), dtype=np.uint8)
    b = rng.integers(0, 256, a.shape, dtype=np.uint8)
    p = _add_params(rng, 13)
    y = _core.testing.qs8_add(a, b, p, isa=isa)
    np.testing.assert_array_equal(y, _core.testing.qs8_add(a, b, p, reference=True))
    np.testing.assert_array_equal(y, numpy_add(a, b, p))
    assert 0.5 < np.mean((y > 0) & (y < 255))
    t = rng.integers(0, 256, 256, dtype=np.uint8)
    np.testing.assert_array_equal(_core.testing.qs8_lut(a, t), t[a])
    s = rng.integers(0, 256, (3, 19), dtype=np.uint8)
    for s_zp, cp in [(0, dict(x_zp=11, scale=2.0**-8, y_zp=3, qmin=0, qmax=255)),   # many ties
                     (7, dict(x_zp=11, scale=float(F32(0.0037)), y_zp=128, qmin=20, qmax=200))]:
        y = _core.testing.qs8_channel_scale(a, s, s_zp, cp, isa=isa)
        np.testing.assert_array_equal(y, _core.testing.qs8_channel_scale(a, s, s_zp, cp, reference=True))
        prod = (a.astype(np.int64) - 11) * (s[:, None, None, :].astype(np.int64) - s_zp)
        np.testing.assert_array_equal(y, requantize_zp_in_float(prod, cp["scale"], cp["y_zp"], cp["qmin"], cp["qmax"]))


@pytest.mark.parametrize("isa", OP_ISAS)
def test_qs8_add_rounds_half_to_even_and_fuses(isa):
    """By hand. a_scale = b_scale = 0.5, offset 0: y = rint((a + b) / 2): (1, 0) 0.5 -> 0,
    (3, 0) 1.5 -> 2, (5, 0) 2.5 -> 2, (2, 3) 2.5 -> 2, (7, 0) 3.5 -> 4, (255, 0) 127.5 -> 128,
    (255, 255) -> 255, (0, 0) -> 0."""
    a = np.array([1, 3, 5, 2, 7, 255, 255, 0], np.uint8)
    b = np.array([0, 0, 0, 3, 0, 0, 255, 0], np.uint8)
    p = dict(a_scale=0.5, b_scale=0.5, offset=0.0, qmin=0, qmax=255)
    want = [0, 2, 2, 2, 4, 128, 255, 0]
    n = 3 * 16 + 5  # vector body and tail
    y = _core.testing.qs8_add(np.tile(a, n), np.tile(b, n), p, isa=isa)
    np.testing.assert_array_equal(y, np.tile(want, n))
    # one rounding per fma: r = 1 + 2^-23, offset = -(128.5 + 2^-16). 129 r + offset = 0.5 + 2^-23
    # exactly, so a fused multiply-add gives 1; rounding 129 r first (to 129 + 2^-16) gives the tie
    # 0.5 -> 0. 130 -> 1.5 + 2^-22 -> 2; 128 -> -0.5 -> 0; 0 -> -128.5 -> clamped to 0.
    r, off = float(1 + 2.0**-23), -(128.5 + 2.0**-16)
    assert F32(r) == r and F32(off) == off
    v = np.tile(np.array([129, 130, 128, 0], np.uint8), n)
    zero = np.zeros_like(v)
    for p, x, y_ in [(dict(a_scale=r, b_scale=1.0, offset=off, qmin=0, qmax=255), v, zero),    # outer fma
                     (dict(a_scale=1.0, b_scale=r, offset=off, qmin=0, qmax=255), zero, v)]:   # inner fma
        got = _core.testing.qs8_add(x, y_, p, isa=isa)
        np.testing.assert_array_equal(got, np.tile([1, 2, 0, 0], n))
        np.testing.assert_array_equal(got, _core.testing.qs8_add(x, y_, p, reference=True))
        np.testing.assert_array_equal(got, numpy_add(x, y_, p))


def test_qs8_pools(rng):
    x = rng.integers(0, 256, (2, 7, 6, 5), dtype=np.uint8)
    y = _core.testing.qs8_maxpool2d(x, (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(y, _core.testing.qs8_maxpool2d(x, (3, 3), (2, 2), (1, 1), reference=True))
    np.testing.assert_array_equal(_core.testing.qs8_maxpool2d(x, (2, 2), (2, 2), (0, 0)),
                                  x[:, :6].reshape(2, 3, 2, 3, 2, 5).max(axis=(2, 4)))
    scale = F32(0.9) / np.arange(1, 10, dtype=F32)           # s_in / (s_out * d) for divisor d
    for cip in (True, False):
        a = _core.testing.qs8_avgpool2d(x, (3, 3), (2, 2), (1, 1), cip, 9, scale, 4)
        np.testing.assert_array_equal(a, _core.testing.qs8_avgpool2d(x, (3, 3), (2, 2), (1, 1), cip, 9, scale, 4,
                                                                     reference=True))
        np.testing.assert_array_equal(a, avgpool2d(x, (3, 3), (2, 2), (1, 1), cip, 9, scale, 4))
    for s in (float(F32(1 / 42)), 2.0**-6):                    # H * W = 42
        g = _core.testing.qs8_global_avgpool2d(x, 9, s, 4)
        acc = x.astype(np.int64).sum(axis=(1, 2)) - 42 * 9
        np.testing.assert_array_equal(g[:, 0, 0], requantize(acc, s, 4))
    # by hand: windows of two with factor 1/2: sums 3, 5, 1, 7, 509 -> 1.5 -> 2, 2.5 -> 2, 0.5 -> 0,
    # 3.5 -> 4, 254.5 -> 254 (half to even)
    x = np.array([[1, 2, 0, 4, 254], [2, 3, 1, 3, 255]], np.uint8).reshape(1, 1, 2, 5)
    want = [2, 2, 0, 4, 254]
    np.testing.assert_array_equal(_core.testing.qs8_global_avgpool2d(x, 0, 0.5, 0).reshape(-1), want)
    for ref in (False, True):
        a = _core.testing.qs8_avgpool2d(x, (1, 2), (1, 2), (0, 0), True, 0, np.array([1.0, 0.5], F32), 0,
                                        reference=ref)
        np.testing.assert_array_equal(a.reshape(-1), want)


BAD_SCALES = [float("nan"), float("inf"), 0.0, -1.0]


def test_qs8_bindings_reject_bad_arguments(rng):
    x = rng.integers(0, 256, (1, 4, 4, 8), dtype=np.uint8)
    w = np.ones((4, 3, 3, 8), np.int8)
    with pytest.raises(TypeError, match="x: expected dtype uint8"):
        _core.testing.qs8_conv2d(x.astype(np.int8), w, None, 0.5, 0, 0)
    with pytest.raises(ValueError, match="w: expected shape"):
        _core.testing.qs8_conv2d(x, np.ones((4, 3, 3, 5), np.int8), None, 0.5, 0, 0)
    for bad in BAD_SCALES + [np.array([0.5, 0.5, 0.5, 0.0], F32)]:
        with pytest.raises(ValueError, match="scale"):
            _core.testing.qs8_conv2d(x, w, None, bad, 0, 0)
    with pytest.raises(ValueError, match=r"scale: expected shape \(4,\)"):
        _core.testing.qs8_conv2d(x, w, None, np.ones(3, F32), 0, 0)
    with pytest.raises(TypeError, match="scale"):
        _core.testing.qs8_conv2d(x, w, None, np.ones(4, np.float64), 0, 0)
    with pytest.raises(ValueError, match="in_zero_point"):
        _core.testing.qs8_conv2d(x, w, None, 0.5, 256, 0)
    with pytest.raises(ValueError, match="bias"):  # the int32 accumulator could overflow
        _core.testing.qs8_conv2d(x, w, np.full(4, 2**31 - 1, np.int32), 0.5, 0, 0)
    with pytest.raises(ValueError, match="residual"):
        _core.testing.qs8_conv2d(x, w, None, 0.5, 0, 0, padding=(1, 1), residual=x, add=_add_params(rng, 0))
    with pytest.raises(ValueError, match="add: missing key"):
        _core.testing.qs8_add(x, x, {"a_scale": 1.0})
    good = dict(a_scale=0.5, b_scale=0.5, offset=0.0, qmin=0, qmax=255)
    for key, val in [("a_scale", 0.0), ("b_scale", -1.0), ("a_scale", float("nan")), ("offset", float("inf")),
                     ("qmax", 256)]:
        with pytest.raises(ValueError, match="add"):
            _core.testing.qs8_add(x, x, {**good, key: val})
    cp = dict(x_zp=0, scale=0.5, y_zp=0, qmin=0, qmax=255)
    s = np.zeros((1, 8), np.uint8)
    for bad in BAD_SCALES:
        with pytest.raises(ValueError, match="scale"):
            _core.testing.qs8_channel_scale(x, s, 0, {**cp, "scale": bad})
        with pytest.raises(ValueError, match="scale"):
            _core.testing.qs8_global_avgpool2d(x, 0, bad, 0)
        with pytest.raises(ValueError, match="scale"):
            _core.testing.qs8_quantize(np.zeros((1, 2, 2, 2), F32), bad, 0)
        with pytest.raises(ValueError, match="scale"):
            _core.testing.qs8_avgpool2d(x, (2, 2), (2, 2), (0, 0), True, 0, np.array([1, 1, 1, bad], F32), 0)
    with pytest.raises(ValueError, match="scale"):  # kh * kw = 4 entries
        _core.testing.qs8_avgpool2d(x, (2, 2), (2, 2), (0, 0), True, 0, np.ones(3, F32), 0)
    with pytest.raises(ValueError, match="padding"):
        _core.testing.qs8_maxpool2d(x, (2, 2), (1, 1), (2, 2))
    with pytest.raises(ValueError, match="path"):
        _core.testing.qs8_conv2d(x, w, None, 0.5, 0, 0, path="nope")

"""int8-full kernels through the bindings (cpp/bindings/register_qs8_ops.cpp): every fast path
equals the plain reference bit for bit, the edge conversions equal numpy, and bad arguments raise
clear Python errors. (The exhaustive per-path edge-shape sweep is the C++ test
cpp/tests/test_qs8_ops.cc, run by test_cpp_kernels.py.)"""
import numpy as np
import pytest

from edgeopt import _core

GEMM_PATHS = list(_core.testing.qgemm_paths())
OP_ISAS = ["scalar"] + (["avx512"] if _core.runtime.cpu_isa() == "avx512" else [])

CONV_CASES = [  # N, H, W, cin, cout, k, stride, padding, groups
    (1, 8, 8, 3, 16, 3, 1, 1, 1),
    (2, 7, 9, 17, 33, 3, 2, 1, 1),
    (1, 6, 6, 64, 70, 1, 1, 0, 1),
    (1, 9, 9, 24, 24, 3, 1, 1, 24),    # depthwise
    (2, 10, 10, 40, 40, 5, 2, 2, 40),  # depthwise 5x5 stride 2
    (1, 6, 6, 8, 12, 3, 1, 0, 4),      # grouped
]


def _add_params(rng, a_zp):
    return dict(a_zp=a_zp, a_mult=int(rng.integers(1 << 29, 1 << 31)), a_shift=1,
                b_zp=int(rng.integers(0, 256)), b_mult=int(rng.integers(1 << 29, 1 << 31)), b_shift=1,
                out_mult=int(rng.integers(1 << 30, 1 << 31)), out_shift=19, out_zp=int(rng.integers(0, 256)),
                qmin=0, qmax=255)


@pytest.mark.parametrize("case", CONV_CASES)
def test_qs8_conv2d_every_path_equals_reference(case, rng):
    N, H, W, cin, cout, k, s, p, g = case
    x = rng.integers(0, 256, (N, H, W, cin), dtype=np.uint8)
    w = rng.integers(-127, 128, (cout, k, k, cin // g), dtype=np.int8)
    bias = rng.integers(-5000, 5000, cout).astype(np.int32)
    mult = rng.integers(1 << 30, 1 << 31, cout).astype(np.int32)
    shift = np.full(cout, 9, np.int32)
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    res = rng.integers(0, 256, (N, OH, OW, cout), dtype=np.uint8)
    lut = rng.integers(0, 256, 256, dtype=np.uint8)
    common = dict(stride=(s, s), padding=(p, p), groups=g)
    for extra in ({}, dict(residual=res, add=_add_params(rng, 77)), dict(lut=lut)):
        ref = _core.testing.qs8_conv2d(x, w, bias, mult, shift, 5, 77, 0, 255, **common, **extra, reference=True)
        assert 0 < np.mean((ref > 0) & (ref < 255))
        for path in GEMM_PATHS:
            for isa in OP_ISAS:
                y = _core.testing.qs8_conv2d(x, w, bias, mult, shift, 5, 77, 0, 255, **common, **extra,
                                     path=path, isa=isa)
                np.testing.assert_array_equal(y, ref, err_msg=f"path={path} isa={isa} {extra.keys()}")


def test_qs8_conv2d_matches_a_numpy_convolution(rng):
    x = rng.integers(0, 256, (2, 6, 5, 4), dtype=np.uint8)
    w = rng.integers(-127, 128, (3, 3, 3, 4), dtype=np.int8)
    zp = 100
    y = _core.testing.qs8_conv2d(x, w, None, 1 << 30, 0, zp, 0, 0, 255, stride=(1, 1), padding=(1, 1))
    xp = np.pad(x.astype(np.int64) - zp, ((0, 0), (1, 1), (1, 1), (0, 0)))
    acc = np.zeros((2, 6, 5, 3), np.int64)
    for i in range(3):
        for j in range(3):
            acc += xp[:, i:i + 6, j:j + 5] @ w[:, i, j, :].T.astype(np.int64)
    want = np.clip((acc * (1 << 30) + (1 << 30)) >> 31, 0, 255)   # multiplier 1/2, shift 0
    np.testing.assert_array_equal(y, want)


def test_qs8_quantize_and_dequantize_equal_numpy(rng):
    x = (rng.standard_normal((2, 3, 5, 4)) * 3).astype(np.float32)
    x[0, 0, 0, :3] = [np.float32(0.5) / np.float32(0.1), 1e9, -1e9]
    inv, zp = np.float32(1 / 0.1), 97
    q = _core.testing.qs8_quantize(x, float(inv), zp)
    want = np.clip(np.rint(x * inv), -zp, 255 - zp) + zp
    np.testing.assert_array_equal(q, want.astype(np.uint8).transpose(0, 2, 3, 1))
    f = _core.testing.qs8_dequantize(q, 0.1, zp)
    np.testing.assert_array_equal(f, ((q.astype(np.int32) - zp).astype(np.float32) * np.float32(0.1)).transpose(0, 3, 1, 2))


@pytest.mark.parametrize("isa", OP_ISAS)
def test_qs8_add_lut_channel_scale_equal_reference(isa, rng):
    a = rng.integers(0, 256, (3, 5, 7, 19), dtype=np.uint8)
    b = rng.integers(0, 256, a.shape, dtype=np.uint8)
    p = _add_params(rng, 13)
    np.testing.assert_array_equal(_core.testing.qs8_add(a, b, p, isa=isa), _core.testing.qs8_add(a, b, p, reference=True))
    t = rng.integers(0, 256, 256, dtype=np.uint8)
    np.testing.assert_array_equal(_core.testing.qs8_lut(a, t), t[a])
    s = rng.integers(0, 256, (3, 19), dtype=np.uint8)
    cp = dict(x_zp=11, mult=1 << 30, shift=7, y_zp=3, qmin=0, qmax=255)
    y = _core.testing.qs8_channel_scale(a, s, 0, cp, isa=isa)
    np.testing.assert_array_equal(y, _core.testing.qs8_channel_scale(a, s, 0, cp, reference=True))
    prod = (a.astype(np.int64) - 11) * s[:, None, None, :]
    np.testing.assert_array_equal(y, np.clip(((prod << 30) + (1 << 37) >> 38) + 3, 0, 255))


def test_qs8_pools(rng):
    x = rng.integers(0, 256, (2, 7, 6, 5), dtype=np.uint8)
    y = _core.testing.qs8_maxpool2d(x, (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(y, _core.testing.qs8_maxpool2d(x, (3, 3), (2, 2), (1, 1), reference=True))
    np.testing.assert_array_equal(_core.testing.qs8_maxpool2d(x, (2, 2), (2, 2), (0, 0)),
                                  x[:, :6].reshape(2, 3, 2, 3, 2, 5).max(axis=(2, 4)))
    m = np.array([(1 << 31) // (d + 2) for d in range(9)], np.int32)
    sh = np.zeros(9, np.int32)
    for cip in (True, False):
        a = _core.testing.qs8_avgpool2d(x, (3, 3), (2, 2), (1, 1), cip, 9, m, sh, 4)
        np.testing.assert_array_equal(a, _core.testing.qs8_avgpool2d(x, (3, 3), (2, 2), (1, 1), cip, 9, m, sh, 4, reference=True))
    g = _core.testing.qs8_global_avgpool2d(x, 9, 1 << 30, 5, 4)                 # 1 / (2 * 32) ~ 1 / 42
    acc = x.astype(np.int64).sum(axis=(1, 2)) - 42 * 9
    np.testing.assert_array_equal(g[:, 0, 0], np.clip(((acc << 30) + (1 << 35) >> 36) + 4, 0, 255))


def test_qs8_bindings_reject_bad_arguments(rng):
    x = rng.integers(0, 256, (1, 4, 4, 8), dtype=np.uint8)
    w = np.ones((4, 3, 3, 8), np.int8)
    with pytest.raises(TypeError, match="x: expected dtype uint8"):
        _core.testing.qs8_conv2d(x.astype(np.int8), w, None, 1 << 30, 0, 0, 0)
    with pytest.raises(ValueError, match="w: expected shape"):
        _core.testing.qs8_conv2d(x, np.ones((4, 3, 3, 5), np.int8), None, 1 << 30, 0, 0, 0)
    with pytest.raises(ValueError, match="shift"):
        _core.testing.qs8_conv2d(x, w, None, 1 << 30, 40, 0, 0)
    with pytest.raises(ValueError, match="in_zero_point"):
        _core.testing.qs8_conv2d(x, w, None, 1 << 30, 0, 256, 0)
    with pytest.raises(ValueError, match="bias"):  # the int32 accumulator could overflow
        _core.testing.qs8_conv2d(x, w, np.full(4, 2**31 - 1, np.int32), 1 << 30, 0, 0, 0)
    with pytest.raises(ValueError, match="residual"):
        _core.testing.qs8_conv2d(x, w, None, 1 << 30, 0, 0, 0, padding=(1, 1), residual=x, add=_add_params(rng, 0))
    with pytest.raises(ValueError, match="add: missing key"):
        _core.testing.qs8_add(x, x, {"a_zp": 0})
    with pytest.raises(ValueError, match="padding"):
        _core.testing.qs8_maxpool2d(x, (2, 2), (1, 1), (2, 2))
    with pytest.raises(ValueError, match="path"):
        _core.testing.qs8_conv2d(x, w, None, 1 << 30, 0, 0, 0, path="nope")

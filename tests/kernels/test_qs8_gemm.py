"""int8 inference GEMM (edgeopt._core.testing.qgemm): every path this CPU has must match, byte for byte, an
integer simulation written here in numpy (independent of the C++ reference), and bad input must
raise a Python error that names the argument."""
import numpy as np
import pytest

from edgeopt import _core
from shapes import QS8_GEMM_SHAPES

PATHS = _core.testing.qgemm_paths()
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65]


def numpy_qgemm(a, b, a_zp, bias, multiplier, shift, out_zp, qmin, qmax, dtype=np.uint8):
    """TFLite single-rounding requantization in int64 numpy:
    y = clamp(((acc * m + 2^(30+s)) >> (31+s)) + out_zp, qmin, qmax)."""
    acc = (a.astype(np.int64) - a_zp) @ b.astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    n = b.shape[1]
    m = np.broadcast_to(np.asarray(multiplier, np.int64), (n,))
    s = np.broadcast_to(np.asarray(shift, np.int64), (n,))
    assert np.abs(acc).max(initial=0) < 2**31
    y = ((acc * m + (np.int64(1) << (30 + s))) >> (31 + s)) + out_zp
    return np.clip(y, qmin, qmax).astype(dtype)


def random_case(rng, M, N, K, variant):
    a = rng.integers(0, 256, (M, K), dtype=np.uint8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    a_zp = [0, 255, int(rng.integers(0, 256))][variant % 3]
    bias = rng.integers(-(1 << 20), 1 << 20, N, dtype=np.int32) if variant % 4 else None
    mult = rng.integers(1 << 30, 2**31 - 1, N, dtype=np.int32)
    lk = int(np.ceil(np.log2(max(K, 1))))
    shift = rng.integers(min(lk + 1, 31), min(lk + 9, 31) + 1, N, dtype=np.int32)
    return a, b, a_zp, bias, mult, shift


def shapes():
    out = []
    for i, M in enumerate(SIZES):
        for j, N in enumerate(SIZES):
            K = SIZES[(i * 7 + j * 3) % len(SIZES)]  # a spread of depths for every (M, N)
            out.append((M, N, K))
    return out + [(100, 70, 127), (129, 33, 300), (64, 96, 576), (1, 1000, 1), (300, 5, 1000)]


@pytest.mark.parametrize("path", PATHS)
def test_matches_numpy_on_edge_sizes_uint8(path, rng):
    for v, (M, N, K) in enumerate(shapes()):
        a, b, a_zp, bias, mult, shift = random_case(rng, M, N, K, v)
        out_zp = int(rng.integers(0, 256))
        qmin = out_zp if v % 3 == 0 else 0  # fused ReLU on every third case
        packed = _core.testing.qgemm_pack(b)
        got = _core.testing.qgemm(a, packed, a_zp, bias, mult, shift, out_zp, qmin, 255, path=path)
        want = numpy_qgemm(a, b, a_zp, bias, mult, shift, out_zp, qmin, 255)
        assert got.dtype == np.uint8 and got.shape == (M, N)
        np.testing.assert_array_equal(got, want, err_msg=f"{path} M={M} N={N} K={K} variant={v}")


@pytest.mark.parametrize("path", PATHS)
def test_matches_numpy_on_network_shapes(path, rng):
    """The ResNet-20 / MobileNetV2 GEMMs bench_qs8_gemm.py times (not its 1024^3 square, a
    throughput reference that the int64 numpy simulation would take seconds on)."""
    for v, (name, M, N, K) in enumerate(s for s in QS8_GEMM_SHAPES if not s[0].startswith("square")):
        a, b, a_zp, bias, mult, shift = random_case(rng, M, N, K, v)
        out_zp = int(rng.integers(0, 256))
        got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), a_zp, bias, mult, shift, out_zp, 0, 255, path=path)
        want = numpy_qgemm(a, b, a_zp, bias, mult, shift, out_zp, 0, 255)
        np.testing.assert_array_equal(got, want, err_msg=f"{path} {name}")


@pytest.mark.parametrize("path", PATHS)
def test_matches_numpy_int8_output_and_relu6_clamp(path, rng):
    for v, (M, N, K) in enumerate(shapes()[::3]):
        a, b, a_zp, bias, mult, shift = random_case(rng, M, N, K, v)
        out_zp = int(rng.integers(-128, 128))
        qmin, qmax = (out_zp, min(127, out_zp + 50)) if v % 2 else (-128, 127)  # ReLU6-like band
        got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), a_zp, bias, mult, shift, out_zp, qmin, qmax,
                          out_dtype=np.int8, path=path)
        want = numpy_qgemm(a, b, a_zp, bias, mult, shift, out_zp, qmin, qmax, np.int8)
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got, want, err_msg=f"{path} M={M} N={N} K={K}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("a_val,b_val,a_zp", [(255, -128, 0), (255, 127, 0), (0, -128, 255),
                                              (0, 127, 255), (255, -128, 255), (128, -1, 0)])
def test_extreme_values(path, a_val, b_val, a_zp):
    for M, N, K in [(17, 33, 65), (5, 16, 1031), (64, 64, 64)]:
        a = np.full((M, K), a_val, np.uint8)
        b = np.full((K, N), b_val, np.int8)
        bias = np.full(N, -7, np.int32)
        for mult, shift in [(2**31 - 1, 20), (1 << 30, 31), (0, 0), (2**31 - 1, 0)]:
            got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), a_zp, bias, mult, shift, 128, path=path)
            want = numpy_qgemm(a, b, a_zp, bias, mult, shift, 128, 0, 255)
            np.testing.assert_array_equal(got, want, err_msg=f"{path} {M}x{N}x{K} m={mult} s={shift}")


def test_per_tensor_equals_per_channel_and_transposed_pack(rng):
    a, b, a_zp, bias, _, _ = random_case(rng, 20, 24, 50, 1)
    packed = _core.testing.qgemm_pack(b)
    x = _core.testing.qgemm(a, packed, a_zp, bias, 1518500250, 14, 3)
    y = _core.testing.qgemm(a, packed, a_zp, bias, np.full(24, 1518500250, np.int32),
                    np.full(24, 14, np.int32), 3)
    z = _core.testing.qgemm(a, _core.testing.qgemm_pack(np.ascontiguousarray(b.T), transposed=True), a_zp, bias,
                    1518500250, 14, 3)
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(x, z)
    assert packed.K == 50 and packed.N == 24


def test_reference_binding_matches_numpy(rng):
    a, b, a_zp, bias, mult, shift = random_case(rng, 33, 17, 70, 2)
    np.testing.assert_array_equal(_core.testing.qgemm_reference(a, b, a_zp, bias, mult, shift, 9),
                                  numpy_qgemm(a, b, a_zp, bias, mult, shift, 9, 0, 255))


def test_threads_do_not_change_the_result(rng):
    a, b, a_zp, bias, mult, shift = random_case(rng, 300, 200, 257, 1)
    packed = _core.testing.qgemm_pack(b)
    saved = _core.runtime.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            _core.runtime.set_num_threads(t)
            outs.append([_core.testing.qgemm(a, packed, a_zp, bias, mult, shift, 5, path=p) for p in PATHS])
    finally:
        _core.runtime.set_num_threads(saved)
    for x in outs[0] + outs[1]:
        np.testing.assert_array_equal(x, outs[0][0])


def test_default_path_follows_set_isa():
    assert _core.testing.qgemm_default_path() in PATHS
    assert _core.testing.qgemm_default_path(K=16) != "amx"  # AMX only for K >= 64
    saved = _core.runtime.active_isa()
    try:
        _core.runtime.set_isa("scalar")
        assert _core.testing.qgemm_default_path() == "scalar"
    finally:
        _core.runtime.set_isa(saved)


def test_empty_dimensions():
    packed = _core.testing.qgemm_pack(np.zeros((0, 5), np.int8))  # K = 0: C = requantize(bias)
    c = _core.testing.qgemm(np.zeros((3, 0), np.uint8), packed, 0, np.full(5, 1 << 20, np.int32), 1 << 30, 0, 0)
    np.testing.assert_array_equal(c, np.full((3, 5), 255, np.uint8))
    assert _core.testing.qgemm(np.zeros((0, 4), np.uint8), _core.testing.qgemm_pack(np.ones((4, 2), np.int8)), 0,
                       None, 1 << 30, 0, 0).shape == (0, 2)


def _bad(**over):
    a = np.zeros((4, 8), np.uint8)
    b = np.ones((8, 3), np.int8)
    kw = dict(a=a, packed=_core.testing.qgemm_pack(b), a_zero_point=0, bias=None, multiplier=1 << 30,
              shift=8, out_zero_point=0)
    kw.update(over)
    return kw


@pytest.mark.parametrize("over,exc,words", [
    (dict(a=np.zeros((4, 8), np.float32)), TypeError, ["a", "uint8", "float32"]),
    (dict(a=[[1, 2]]), TypeError, ["a", "list"]),
    (dict(a=np.zeros((4, 7), np.uint8)), ValueError, ["a", "(*, 8)", "(4, 7)"]),
    (dict(a=np.zeros((4, 16), np.uint8)[:, ::2]), ValueError, ["a", "contiguous"]),
    (dict(a=np.zeros(8, np.uint8)), ValueError, ["a", "2-d"]),
    (dict(a_zero_point=256), ValueError, ["a_zero_point", "[0, 255]", "256"]),
    (dict(bias=np.zeros(3, np.int64)), TypeError, ["bias", "int32", "int64"]),
    (dict(bias=np.zeros(4, np.int32)), ValueError, ["bias", "(3,)", "(4,)"]),
    (dict(bias=np.full(3, 2**31 - 1, np.int32)), ValueError, ["bias", "2^31"]),
    (dict(multiplier=-1), ValueError, ["multiplier", "-1"]),
    (dict(multiplier=np.ones(2, np.int32)), ValueError, ["multiplier", "(3,)", "(2,)"]),
    (dict(multiplier=np.ones(3, np.float32)), TypeError, ["multiplier", "int32"]),
    (dict(shift=32), ValueError, ["shift", "[0, 31]", "32"]),
    (dict(shift=np.array([1, 2, -1], np.int32)), ValueError, ["shift", "-1", "index 2"]),
    (dict(out_zero_point=300), ValueError, ["out_zero_point", "300"]),
    (dict(out_zero_point=-1, out_dtype="int8", qmin=-200), ValueError, ["qmin", "-200"]),
    (dict(qmin=10, qmax=5), ValueError, ["qmax", "[10, 255]", "5"]),
    (dict(out_dtype="float32"), TypeError, ["out_dtype", "float32"]),
    (dict(out_dtype="nonsense"), TypeError, ["out_dtype"]),
    (dict(path="sse9"), ValueError, ["path", "scalar", "sse9"]),
    (dict(path=3), TypeError, ["path", "int"]),
])
def test_bad_input_raises_naming_the_argument(over, exc, words):
    with pytest.raises(exc) as e:
        _core.testing.qgemm(**_bad(**over))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_pack_and_packed_arguments():
    with pytest.raises(TypeError, match="b: expected dtype int8, got uint8"):
        _core.testing.qgemm_pack(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="b: expected a 2-d array"):
        _core.testing.qgemm_pack(np.zeros(3, np.int8))
    with pytest.raises(TypeError):
        _core.testing.qgemm(**_bad(packed=np.ones((8, 3), np.int8)))
    with pytest.raises(TypeError, match="b: expected dtype int8"):
        _core.testing.qgemm_reference(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int16), 0, None, 1, 1, 0)

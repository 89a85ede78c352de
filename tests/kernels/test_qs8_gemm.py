"""int8 inference GEMM (edgeopt._core.testing.qgemm): every path this CPU has must match, byte for byte, a
simulation of the float32 requantization written here in numpy (independent of the C++ reference),
hand-computed values pin down its rounding (half to even, float32 conversion and product), and bad
input must raise a Python error that names the argument."""
import numpy as np
import pytest

from edgeopt import _core
from int8_sim import requantize
from shapes import QS8_GEMM_SHAPES

PATHS = _core.testing.qgemm_paths()
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65]


def numpy_qgemm(a, b, a_zp, bias, scale, out_zp, qmin, qmax, dtype=np.uint8):
    """The float32 requantization of onnxruntime, in numpy:
    y = clamp(rint(float32(acc) * float32(scale)) + out_zp, qmin, qmax), rint half to even, with
    acc = (a - a_zp) @ b + bias exact in int64."""
    acc = (a.astype(np.int64) - a_zp) @ b.astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    assert np.abs(acc).max(initial=0) < 2**31
    return requantize(acc, scale, out_zp, qmin, qmax).astype(dtype)


def random_scale(rng, n, K, variant=1):
    """Per-channel float32 factors spread so outputs cover [0, 255] for depth K; every fifth
    variant uses powers of two, where ties (x.5 products) are frequent."""
    lk = int(np.ceil(np.log2(max(K, 1))))
    e = rng.integers(lk + 1, lk + 10, n)
    if variant % 5 == 0:
        return (2.0 ** -e).astype(np.float32)
    return (rng.uniform(0.5, 1.0, n) * 2.0 ** -e).astype(np.float32)


def random_case(rng, M, N, K, variant):
    a = rng.integers(0, 256, (M, K), dtype=np.uint8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    a_zp = [0, 255, int(rng.integers(0, 256))][variant % 3]
    bias = rng.integers(-(1 << 20), 1 << 20, N, dtype=np.int32) if variant % 4 else None
    return a, b, a_zp, bias, random_scale(rng, N, K, variant)


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
        a, b, a_zp, bias, scale = random_case(rng, M, N, K, v)
        out_zp = int(rng.integers(0, 256))
        qmin = out_zp if v % 3 == 0 else 0  # fused ReLU on every third case
        packed = _core.testing.qgemm_pack(b)
        got = _core.testing.qgemm(a, packed, a_zp, bias, scale, out_zp, qmin, 255, path=path)
        want = numpy_qgemm(a, b, a_zp, bias, scale, out_zp, qmin, 255)
        assert got.dtype == np.uint8 and got.shape == (M, N)
        np.testing.assert_array_equal(got, want, err_msg=f"{path} M={M} N={N} K={K} variant={v}")


@pytest.mark.parametrize("path", PATHS)
def test_matches_numpy_on_network_shapes(path, rng):
    """The ResNet-20 / MobileNetV2 GEMMs bench_qs8_gemm.py times (not its 1024^3 square, a
    throughput reference that the int64 numpy simulation would take seconds on)."""
    for v, (name, M, N, K) in enumerate(s for s in QS8_GEMM_SHAPES if not s[0].startswith("square")):
        a, b, a_zp, bias, scale = random_case(rng, M, N, K, v)
        out_zp = int(rng.integers(0, 256))
        got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), a_zp, bias, scale, out_zp, 0, 255, path=path)
        want = numpy_qgemm(a, b, a_zp, bias, scale, out_zp, 0, 255)
        np.testing.assert_array_equal(got, want, err_msg=f"{path} {name}")


@pytest.mark.parametrize("path", PATHS)
def test_matches_numpy_int8_output_and_relu6_clamp(path, rng):
    for v, (M, N, K) in enumerate(shapes()[::3]):
        a, b, a_zp, bias, scale = random_case(rng, M, N, K, v)
        out_zp = int(rng.integers(-128, 128))
        qmin, qmax = (out_zp, min(127, out_zp + 50)) if v % 2 else (-128, 127)  # ReLU6-like band
        got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), a_zp, bias, scale, out_zp, qmin, qmax,
                          out_dtype=np.int8, path=path)
        want = numpy_qgemm(a, b, a_zp, bias, scale, out_zp, qmin, qmax, np.int8)
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got, want, err_msg=f"{path} M={M} N={N} K={K}")


F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).smallest_subnormal)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("a_val,b_val,a_zp", [(255, -128, 0), (255, 127, 0), (0, -128, 255),
                                              (0, 127, 255), (255, -128, 255), (128, -1, 0)])
def test_extreme_values(path, a_val, b_val, a_zp):
    """Largest accumulators (|acc| up to 255 * 128 * 1031, past 2^24 where float32(acc) rounds) with
    scales from the smallest subnormal to the largest float32 (products that overflow to inf)."""
    for M, N, K in [(17, 33, 65), (5, 16, 1031), (64, 64, 64)]:
        a = np.full((M, K), a_val, np.uint8)
        b = np.full((K, N), b_val, np.int8)
        bias = np.full(N, -7, np.int32)
        for scale in [2.0**-20, 2.0**-32, 0.99999994, 1.0, 3.0, 1e30, F32_MAX, F32_TINY,
                      np.linspace(2.0**-28, 2.0**-12, N, dtype=np.float32)]:
            got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), a_zp, bias, scale, 128, path=path)
            want = numpy_qgemm(a, b, a_zp, bias, scale, 128, 0, 255)
            np.testing.assert_array_equal(got, want, err_msg=f"{path} {M}x{N}x{K} scale={scale}")


def _one_deep(d, b_cols, bias_cols, scale, out_zp, path, reps=9, **kw):
    """qgemm with K = 1 so acc[i, j] = d[i] * b_cols[j] + bias_cols[j] exactly (a = d + 128,
    a_zero_point 128); the columns are repeated `reps` times and the rows twice, so the vector
    paths see full tiles and remainders."""
    d = np.tile(np.asarray(d, np.int64), 2)
    assert np.all((-128 <= d) & (d <= 127))
    a = (d + 128).astype(np.uint8)[:, None]
    b = np.tile(np.asarray(b_cols, np.int8), reps)[None, :]
    bias = np.tile(np.asarray(bias_cols, np.int32), reps)
    if not isinstance(scale, float):
        scale = np.tile(np.asarray(scale, np.float32), reps)
    got = _core.testing.qgemm(a, _core.testing.qgemm_pack(b), 128, bias, scale, out_zp, path=path, **kw)
    ref = _core.testing.qgemm_reference(a, b, 128, bias, scale, out_zp, **kw)
    np.testing.assert_array_equal(got, ref, err_msg=f"{path}: kernel vs reference")
    head = got[:len(d) // 2, :len(b_cols)]
    np.testing.assert_array_equal(got, np.tile(head, (2, reps)), err_msg=f"{path}: repeated rows/columns")
    return head


@pytest.mark.parametrize("path", PATHS)
def test_rounds_half_to_even(path):
    """scale 0.5 makes every odd accumulator a tie: 2.5 -> 2, 3.5 -> 4, 0.5 -> 0, -2.5 -> -2,
    -3.5 -> -4, -0.5 -> 0, 1.5 -> 2, -1.5 -> -2 (half up would give 3, 4, 1, -2, -3, 0, 2, -1)."""
    d = [5, 7, 1, 3, -5, -7, -1, -3, 0, 4, 9]
    head = _one_deep(d, [1, -1], [0, 0], 0.5, 100, path)
    want = np.array([[102, 98], [104, 96], [100, 100], [102, 98], [98, 102], [96, 104], [100, 100],
                     [98, 102], [100, 100], [102, 98], [104, 96]], np.uint8)
    np.testing.assert_array_equal(head, want)
    # int8 output, zero point 0: the signed ties round the same way
    head = _one_deep(d, [1, -1], [0, 0], 0.5, 0, path, out_dtype="int8")
    np.testing.assert_array_equal(head, want.astype(np.int64) - 100)


@pytest.mark.parametrize("path", PATHS)
def test_float32_product_and_conversion(path):
    """The product is float32, not float64 or exact: float32(0.1) = 0.1 + 1.49e-9, so 25 * it =
    2.5 + 3.7e-8, within half a float32 ulp (1.2e-7) of 2.5: the float32 product is the tie 2.5 and
    rounds to 2 (exact arithmetic: 3). Likewise 45 -> 4.5 -> 4, 5 -> 0.5 -> 0, -25 -> -2.5 -> -2;
    15 -> 1.5 -> 2 and 35 -> 3.5 -> 4 agree with exact rounding."""
    head = _one_deep([25, 45, 5, -25, 15, 35, 0], [1], [0], float(np.float32(0.1)), 100, path, reps=19)
    np.testing.assert_array_equal(head[:, 0], [102, 104, 100, 98, 102, 104, 100])
    # float32(acc) rounds past 2^24 (float32 spacing 2 in [2^24, 2^25)), to even:
    # 20971520 = 2.5 * 2^23 and scale 2^-23. 20971521 -> 20971520 -> 2.5 -> 2 (exact: 3),
    # 20971523 -> 20971524 -> 3, 20971519 -> 20971520 -> 2, 20971517 -> 20971516 -> 2,
    # 20971522 -> 2.5000002 -> 3, 20971518 -> 2; the second column is the negation
    # (-20971521 -> -20971520 -> -2.5 -> -2, exact: -3; -20971522 -> -3; -20971523 -> -20971524 -> -3).
    head = _one_deep([0, 1, 2, 3, -1, -2, -3], [1, -1], [20971520, -20971520], 2.0**-23, 100, path)
    np.testing.assert_array_equal(head, [[102, 98], [102, 98], [103, 97], [103, 97], [102, 98],
                                         [102, 98], [102, 98]])


@pytest.mark.parametrize("path", PATHS)
def test_scales_of_one_and_above(path):
    """Factors >= 1 (impossible with the Q31 multiplier): per-channel 3.0, 1.0, 2.5 (ties at odd
    accumulators), 100.0 and the largest float32, out_zero_point 128, saturating at 0 and 255."""
    d = [0, 1, -1, 2, 10, -10, 50, -50, 127, -128]
    head = _one_deep(d, [1] * 5, [0] * 5, [3.0, 1.0, 2.5, 100.0, F32_MAX], 128, path)
    want = np.array([[128, 128, 128, 128, 128],
                     [131, 129, 130, 228, 255],   # 2.5 -> 2
                     [125, 127, 126, 28, 0],      # -2.5 -> -2
                     [134, 130, 133, 255, 255],
                     [158, 138, 153, 255, 255],
                     [98, 118, 103, 0, 0],
                     [255, 178, 253, 255, 255],
                     [0, 78, 3, 0, 0],
                     [255, 255, 255, 255, 255],   # 317.5 -> 318, + 128: clamped
                     [0, 0, 0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(head, want)
    # a per-tensor 3.0 with a ReLU6-like band [128, 146]
    head = _one_deep(d, [1], [0], 3.0, 128, path, qmin=128, qmax=146)
    np.testing.assert_array_equal(head[:, 0], [128, 131, 128, 134, 146, 128, 146, 128, 146, 128])


def test_per_tensor_equals_per_channel_and_transposed_pack(rng):
    a, b, a_zp, bias, _ = random_case(rng, 20, 24, 50, 1)
    packed = _core.testing.qgemm_pack(b)
    s = float(np.float32(0.70710677 * 2.0**-14))
    x = _core.testing.qgemm(a, packed, a_zp, bias, s, 3)
    y = _core.testing.qgemm(a, packed, a_zp, bias, np.full(24, s, np.float32), 3)
    z = _core.testing.qgemm(a, _core.testing.qgemm_pack(np.ascontiguousarray(b.T), transposed=True), a_zp, bias,
                            s, 3)
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(x, numpy_qgemm(a, b, a_zp, bias, s, 3, 0, 255))
    assert packed.K == 50 and packed.N == 24


def test_reference_binding_matches_numpy(rng):
    a, b, a_zp, bias, scale = random_case(rng, 33, 17, 70, 2)
    np.testing.assert_array_equal(_core.testing.qgemm_reference(a, b, a_zp, bias, scale, 9),
                                  numpy_qgemm(a, b, a_zp, bias, scale, 9, 0, 255))


def test_threads_do_not_change_the_result(rng):
    a, b, a_zp, bias, scale = random_case(rng, 300, 200, 257, 1)
    packed = _core.testing.qgemm_pack(b)
    saved = _core.runtime.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            _core.runtime.set_num_threads(t)
            outs.append([_core.testing.qgemm(a, packed, a_zp, bias, scale, 5, path=p) for p in PATHS])
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
    c = _core.testing.qgemm(np.zeros((3, 0), np.uint8), packed, 0, np.full(5, 1 << 20, np.int32), 0.5, 0)
    np.testing.assert_array_equal(c, np.full((3, 5), 255, np.uint8))
    bias = np.array([5, 7, -5, 3, 200], np.int32)  # 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 1.5 -> 2, 100
    c = _core.testing.qgemm(np.zeros((2, 0), np.uint8), packed, 0, bias, 0.5, 10)
    np.testing.assert_array_equal(c, np.tile(np.array([12, 14, 8, 12, 110], np.uint8), (2, 1)))
    assert _core.testing.qgemm(np.zeros((0, 4), np.uint8), _core.testing.qgemm_pack(np.ones((4, 2), np.int8)), 0,
                               None, 0.5, 0).shape == (0, 2)


def _bad(**over):
    a = np.zeros((4, 8), np.uint8)
    b = np.ones((8, 3), np.int8)
    kw = dict(a=a, packed=_core.testing.qgemm_pack(b), a_zero_point=0, bias=None, scale=2.0**-8,
              out_zero_point=0)
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
    (dict(scale=float("nan")), ValueError, ["scale", "finite", "nan"]),
    (dict(scale=float("inf")), ValueError, ["scale", "finite", "inf"]),
    (dict(scale=-float("inf")), ValueError, ["scale", "-inf"]),
    (dict(scale=0.0), ValueError, ["scale", "> 0", "0"]),
    (dict(scale=-1.0), ValueError, ["scale", "> 0", "-1"]),
    (dict(scale=1e39), ValueError, ["scale", "inf"]),  # a Python float past float32's range
    (dict(scale=np.array([1.0, 0.5, 0.0], np.float32)), ValueError, ["scale[2]", "> 0"]),
    (dict(scale=np.array([1.0, np.nan, 1.0], np.float32)), ValueError, ["scale[1]", "nan"]),
    (dict(scale=np.array([-0.5, 1.0, 1.0], np.float32)), ValueError, ["scale[0]", "-0.5"]),
    (dict(scale=np.ones(2, np.float32)), ValueError, ["scale", "(3,)", "(2,)"]),
    (dict(scale=np.ones(3, np.float64)), TypeError, ["scale", "float32", "float64"]),
    (dict(scale=np.ones(3, np.int32)), TypeError, ["scale", "float32", "int32"]),
    (dict(scale="0.5"), TypeError, ["scale", "str"]),
    (dict(scale=None), TypeError, ["scale", "NoneType"]),
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
        _core.testing.qgemm_reference(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int16), 0, None, 1.0, 0)


def test_scale_accepts_numpy_scalars_and_what_quant_returns(rng):
    """A numpy float32 scalar or 0-d array (what quant.requant_scale returns for scalars) works
    like the Python float."""
    from edgeopt import quant
    a = rng.integers(0, 256, (5, 40), dtype=np.uint8)
    b = rng.integers(-127, 128, (40, 9), dtype=np.int8)
    packed = _core.testing.qgemm_pack(b)
    m = quant.requant_scale(0.05, 0.01, 0.03)       # a 0-d float32 array
    want = _core.testing.qgemm(a, packed, 3, None, float(m), 100)
    for s in (m, np.float32(m), np.float64(m)):
        np.testing.assert_array_equal(_core.testing.qgemm(a, packed, 3, None, s, 100), want)

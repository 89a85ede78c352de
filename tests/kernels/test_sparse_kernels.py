"""Sparse inference kernels (edgeopt._core.testing.spmm / qspmm): fp32 must match a numpy float64 product
to within 1e-5 of sum |w x| on every block shape, int8 must match a numpy simulation of the float32
requantization written here byte for byte (and hand-computed ties, rounded half to even), on edge
sizes and sparsities 0 %, 50 %, 90 %, 100 % with empty rows; every ISA path this CPU has runs
(set_isa); bad input raises a Python error naming the argument."""
import numpy as np
import pytest

from edgeopt import _core
from int8_sim import requantize
from tolerances import TOL

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65]
SPARSITY = [0.0, 0.5, 0.9, 1.0]
BLOCKS = [(1, 1), (4, 1), (8, 1)]



def sparse_weights(rng, cout, cin, sparsity, block=(1, 1), empty_rows=False, dtype=np.float32):
    """Random weights with about `sparsity` of their (br x bc) blocks zeroed."""
    br, bc = block
    if dtype == np.int8:
        w = rng.integers(-128, 128, (cout, cin), dtype=np.int8)
    else:
        w = rng.standard_normal((cout, cin)).astype(np.float32)
    keep = rng.random((-(-cout // br), -(-cin // bc))) >= sparsity
    mask = np.repeat(np.repeat(keep, br, 0), bc, 1)[:cout, :cin]
    w = np.where(mask, w, 0).astype(dtype)
    if empty_rows:
        w[1::3] = 0
    return w


def shapes():
    out = []
    for i, cout in enumerate(SIZES):
        for j, hw in enumerate(SIZES):
            out.append((cout, SIZES[(i * 7 + j * 3) % len(SIZES)], hw))
    return out[::3] + [(64, 64, 64), (96, 24, 196), (256, 256, 64), (33, 40, 1)]


def check_f32(got, x, w, bias, lo, hi):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    want = np.einsum("ok,nkp->nop", w64, x64)
    mag = np.einsum("ok,nkp->nop", np.abs(w64), np.abs(x64))
    if bias is not None:
        want += bias[None, :, None]
        mag += np.abs(bias)[None, :, None]
    want = np.clip(want, lo, hi)
    assert np.all(np.abs(got.astype(np.float64) - want) <= TOL["f32-op"].rtol * mag + 1e-30)


@pytest.mark.parametrize("block", BLOCKS)
def test_spmm_matches_numpy_on_edge_sizes(isa, block, rng):
    for v, (cout, cin, hw) in enumerate(shapes()):
        cin = -(-cin // block[1]) * block[1]
        w = sparse_weights(rng, cout, cin, SPARSITY[v % 4], block, empty_rows=v % 3 == 1)
        x = rng.standard_normal((1 + v % 2, cin, hw)).astype(np.float32)
        bias = rng.standard_normal(cout).astype(np.float32) if v % 2 else None
        act, (lo, hi) = [("none", (-np.inf, np.inf)), ("relu", (0, np.inf)), ("relu6", (0, 6))][v % 3]
        packed = _core.sparse.spmm_pack(w, block)
        assert packed.nnz == np.count_nonzero(w)
        got = _core.testing.spmm(x, packed, bias, act)
        assert got.shape == (x.shape[0], cout, hw) and got.dtype == np.float32
        check_f32(got, x, w, bias, lo, hi)
        np.testing.assert_array_equal(_core.testing.spmm_unpack(packed), w)


def test_spmm_nchw_and_linear_forms(rng):
    w = sparse_weights(rng, 24, 40, 0.8)
    x4 = rng.standard_normal((2, 40, 5, 7)).astype(np.float32)
    p = _core.sparse.spmm_pack(w.reshape(24, 40, 1, 1))
    y4 = _core.testing.spmm(x4, p)
    assert y4.shape == (2, 24, 5, 7)
    check_f32(y4.reshape(2, 24, 35), x4.reshape(2, 40, 35), w, None, -np.inf, np.inf)
    x2 = rng.standard_normal((9, 40)).astype(np.float32)  # linear layer: (N, in) -> (N, out)
    bias = rng.standard_normal(24).astype(np.float32)
    y2 = _core.testing.spmm(x2, p, bias, "relu")
    check_f32(y2.T[None], x2.T[None], w, bias, 0, np.inf)
    np.testing.assert_allclose(y2, _core.testing.spmm_reference(x2, w, bias, "relu"), rtol=1e-5, atol=1e-5)


def test_spmm_csr_and_bitmask_give_the_same_result(rng):
    cout, cin = 33, 70
    w = sparse_weights(rng, cout, cin, 0.7, empty_rows=True)
    x = rng.standard_normal((1, cin, 50)).astype(np.float32)
    rows, cols = np.nonzero(w)
    row_ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=cout))]).astype(np.int32)
    csr = _core.testing.spmm_pack_csr(row_ptr, cols.astype(np.int32), w[rows, cols], (cout, cin))
    mask = np.packbits(w != 0, axis=1, bitorder="little")
    bm = _core.testing.spmm_pack_bitmask(mask, w[w != 0], (cout, cin))
    dense = _core.sparse.spmm_pack(w)
    want = _core.testing.spmm(x, dense)
    np.testing.assert_array_equal(_core.testing.spmm(x, csr), want)
    np.testing.assert_array_equal(_core.testing.spmm(x, bm), want)
    np.testing.assert_array_equal(csr.col, cols)
    assert bm.nbytes == dense.nbytes


def test_spmm_thread_count_does_not_change_results(rng):
    w = sparse_weights(rng, 130, 64, 0.9)
    x = rng.standard_normal((1, 64, 300)).astype(np.float32)
    p = _core.sparse.spmm_pack(w)
    saved = _core.runtime.get_num_threads()
    try:
        _core.runtime.set_num_threads(1)
        a = _core.testing.spmm(x, p)
        _core.runtime.set_num_threads(2)
        b = _core.testing.spmm(x, p)
    finally:
        _core.runtime.set_num_threads(saved)
    np.testing.assert_array_equal(a, b)


def test_spmm_bad_input_raises(rng):
    w = sparse_weights(rng, 8, 12, 0.5)
    p = _core.sparse.spmm_pack(w)
    x = np.zeros((1, 12, 4), np.float32)
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        _core.testing.spmm(x.astype(np.float64), p)
    with pytest.raises(ValueError, match="x: expected 12 input channels"):
        _core.testing.spmm(np.zeros((1, 11, 4), np.float32), p)
    with pytest.raises(ValueError, match="activation"):
        _core.testing.spmm(x, p, None, "gelu")
    with pytest.raises(ValueError, match="bias: expected shape"):
        _core.testing.spmm(x, p, np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="block"):
        _core.sparse.spmm_pack(w, (2, 2))
    with pytest.raises(ValueError, match="block"):  # 1x4 had kernels no lowering chose: deleted
        _core.sparse.spmm_pack(np.zeros((4, 8), np.float32), (1, 4))
    with pytest.raises(TypeError, match="packed"):
        _core.testing.spmm(x, None)
    with pytest.raises(ValueError, match="row_ptr"):
        _core.testing.spmm_pack_csr(np.array([0, 2, 1], np.int32), np.zeros(1, np.int32),
                            np.zeros(1, np.float32), (2, 4))
    with pytest.raises(ValueError, match="col: expected column indices"):
        _core.testing.spmm_pack_csr(np.array([0, 1], np.int32), np.array([9], np.int32),
                            np.ones(1, np.float32), (1, 4))
    with pytest.raises(ValueError, match="mask: bits past Cin"):
        _core.testing.spmm_pack_bitmask(np.array([[0xFF]], np.uint8), np.ones(8, np.float32), (1, 4))
    with pytest.raises(ValueError, match="values: expected shape"):
        _core.testing.spmm_pack_bitmask(np.array([[0x3]], np.uint8), np.ones(3, np.float32), (1, 4))


# ------------------------------------------------------------------------------------------ int8

def numpy_qspmm(x, w, a_zp, bias, scale, out_zp, qmin, qmax, dtype=np.uint8):
    """The float32 requantization (as qs8-gemm) in numpy:
    y = clamp(rint(float32(acc) * float32(scale[o])) + out_zp, qmin, qmax), rint half to even."""
    acc = np.einsum("ok,nkp->nop", w.astype(np.int64), x.astype(np.int64) - a_zp)
    if bias is not None:
        acc += bias.astype(np.int64)[None, :, None]
    s = np.broadcast_to(np.asarray(scale, np.float32), (w.shape[0],))[None, :, None]
    return requantize(acc, s, out_zp, qmin, qmax).astype(dtype)


@pytest.mark.parametrize("block_rows", [1, 4])
def test_qspmm_matches_numpy_bit_for_bit(isa, block_rows, rng):
    for v, (cout, cin, hw) in enumerate(shapes()):
        w = sparse_weights(rng, cout, cin, SPARSITY[v % 4], (block_rows, 1), v % 3 == 1, np.int8)
        x = rng.integers(0, 256, (1 + v % 2, cin, hw), dtype=np.uint8)
        a_zp = [0, 255, int(rng.integers(0, 256))][v % 3]
        bias = rng.integers(-(1 << 20), 1 << 20, cout, dtype=np.int32) if v % 4 else None
        lk = int(np.ceil(np.log2(max(cin, 1))))
        e = rng.integers(lk + 1, lk + 10, cout)
        if v % 5 == 0:  # powers of two: frequent ties
            scale = (2.0 ** -e).astype(np.float32)
        else:
            scale = (rng.uniform(0.5, 1.0, cout) * 2.0 ** -e).astype(np.float32)
        if v % 7 == 3:
            scale = float(scale[0])  # one for all channels
        if v % 2:
            out_zp, lo, hi, dt = int(rng.integers(-128, 128)), -128, 127, np.int8
        else:
            out_zp, lo, hi, dt = int(rng.integers(0, 256)), 0, 255, np.uint8
        if v % 3 == 0:
            lo = out_zp  # fused ReLU
        p = _core.testing.qspmm_pack(w, block_rows)
        got = _core.testing.qspmm(x, p, a_zp, bias, scale, out_zp, lo, hi, np.dtype(dt).name)
        want = numpy_qspmm(x, w, a_zp, bias, scale, out_zp, lo, hi, dt)
        assert got.dtype == dt and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"{isa} {cout}x{cin} hw={hw} v={v}")
        np.testing.assert_array_equal(_core.testing.qspmm_unpack(p), w)


@pytest.mark.parametrize("block_rows", [1, 4])
def test_qspmm_rounding_and_large_scales_by_hand(isa, block_rows):
    """Cin = 1, a_zero_point 128: acc[o, p] = w[o] * (x[p] - 128). Output channels (weight, scale):
    (1, 0.5) and (-1, 0.5) make odd accumulators ties, rounded half to even (2.5 -> 2, 3.5 -> 4,
    0.5 -> 0, -2.5 -> -2, -3.5 -> -4, -1.5 -> -2); (1, 3.0) and (1, 2.5) are factors >= 1;
    (1, float32(0.1)): 25 * float32(0.1) = 2.5 + 3.7e-8 is 2.5 in float32, so 2 (exact: 3).
    The 5 channels repeat 4 times (20 channels: full blocks of 4 and a remainder)."""
    d = np.array([5, 7, 1, 3, -5, 25, 45, 0, -50, 127])
    x = (d + 128).astype(np.uint8).reshape(1, 1, -1)
    w = np.tile(np.array([1, -1, 1, 1, 1], np.int8), 4).reshape(20, 1)
    scale = np.tile(np.array([0.5, 0.5, 3.0, 2.5, 0.1], np.float32), 4)
    want = np.array([[102, 104, 100, 102, 98, 112, 122, 100, 75, 164],     # 0.5: 2.5 -> 2, ..., 63.5 -> 64
                     [98, 96, 100, 98, 102, 88, 78, 100, 125, 36],          # -0.5
                     [115, 121, 103, 109, 85, 175, 235, 100, 0, 255],       # 3.0
                     [112, 118, 102, 108, 88, 162, 212, 100, 0, 255],      # 2.5: 12.5 -> 12, 2.5 -> 2, ...
                     [100, 101, 100, 100, 100, 102, 104, 100, 95, 113]],   # float32(0.1)
                    np.uint8)
    p = _core.testing.qspmm_pack(w, block_rows)
    got = _core.testing.qspmm(x, p, 128, None, scale, 100)
    np.testing.assert_array_equal(got[0], np.tile(want, (4, 1)))
    np.testing.assert_array_equal(_core.testing.qspmm_reference(x, w, 128, None, scale, 100), got)


def test_qspmm_nchw_matches_reference_and_errors(rng):
    w = sparse_weights(rng, 16, 32, 0.9, dtype=np.int8)
    x = rng.integers(0, 256, (2, 32, 6, 5), dtype=np.uint8)
    p = _core.testing.qspmm_pack(w.reshape(16, 32, 1, 1))
    for args in [(7, None, 2.0**-13, 3), (7, None, 3.0, 3),
                 (7, None, np.linspace(2.0**-14, 1.5, 16, dtype=np.float32), 3)]:
        got = _core.testing.qspmm(x, p, *args)
        np.testing.assert_array_equal(got, _core.testing.qspmm_reference(x, w, *args))
        want = numpy_qspmm(x.reshape(2, 32, 30), w, *args, 0, 255).reshape(2, 16, 6, 5)
        np.testing.assert_array_equal(got, want)
    args = (7, None, 2.0**-13, 3)
    with pytest.raises(TypeError, match="x: expected dtype uint8"):
        _core.testing.qspmm(x.astype(np.int8), p, *args)
    with pytest.raises(ValueError, match="a_zero_point"):
        _core.testing.qspmm(x, p, 300, None, 2.0**-13, 3)
    for bad in [float("nan"), float("inf"), 0.0, -1.0, np.r_[np.ones(15), 0.0].astype(np.float32)]:
        for fn, wp in [(_core.testing.qspmm, p), (_core.testing.qspmm_reference, w)]:
            with pytest.raises(ValueError, match="scale"):
                fn(x, wp, 0, None, bad, 3)
    with pytest.raises(ValueError, match=r"scale: expected shape \(16,\)"):
        _core.testing.qspmm(x, p, 0, None, np.ones(15, np.float32), 3)
    with pytest.raises(TypeError, match="scale"):
        _core.testing.qspmm(x, p, 0, None, np.ones(16, np.float64), 3)
    with pytest.raises(ValueError, match="block_rows"):
        _core.testing.qspmm_pack(w, 2)
    with pytest.raises(ValueError, match="bias"):
        _core.testing.qspmm(x, p, 0, np.full(16, 2**31 - 1, np.int32), 2.0**-13, 3)

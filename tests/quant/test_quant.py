"""edgeopt.quant, the one home of quantization arithmetic: quantize / dequantize / weight scales /
bias / histogram / observers against the formulas written out in numpy, and the edge cases the
issue names (all-zero, constant, single sample, NaN / Inf naming the tensor, empty observer)."""
import numpy as np
import pytest

from edgeopt import quant


def np_quantize(x, scale, zp, qmin, qmax, axis=None):
    x = np.asarray(x, np.float32).astype(np.float64)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = np.reshape(scale, shape), np.reshape(zp, shape)
    return np.clip(np.round(x / scale) + zp, qmin, qmax)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantize_per_tensor_matches_the_formula(rng, symmetric, bits):
    x = (rng.standard_normal((3, 5, 7)) * 4).astype(np.float32)
    qmin, qmax = quant.qrange(bits, symmetric)
    scale, zp = quant.qparams(float(x.min()), float(x.max()), bits, symmetric)
    q = quant.quantize(x, scale, zp, bits, symmetric)
    assert q.dtype == (np.int8 if symmetric else np.uint8) and q.shape == x.shape
    np.testing.assert_array_equal(q, np_quantize(x, scale, zp, qmin, qmax))
    back = quant.dequantize(q, scale, zp)
    np.testing.assert_array_equal(back, (scale * (q.astype(np.float64) - zp)).astype(np.float32))
    assert np.abs(back - x).max() <= scale / 2 * (1 + 1e-6)  # in range: error at most half a step


@pytest.mark.parametrize("axis", [0, 1, 3, -1])
def test_quantize_per_channel_any_axis(rng, axis):
    w = rng.standard_normal((4, 6, 3, 5)).astype(np.float32)
    q, s = quant.quantize_per_channel(w, axis=axis)
    red = tuple(d for d in range(4) if d != axis % 4)
    amax = np.abs(w.astype(np.float64)).max(axis=red)
    np.testing.assert_array_equal(s, np.where(amax > 0, amax / 127, 1.0))
    np.testing.assert_array_equal(q, np_quantize(w, s, np.zeros_like(s), -127, 127, axis % 4))
    np.testing.assert_allclose(quant.dequantize(q, s, 0, axis=axis), w, atol=float(s.max()) / 2 + 1e-7)


def test_rounding_is_half_to_even_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000.0, -1000.0], np.float32)
    q = quant.quantize(x, 1.0, 0)
    np.testing.assert_array_equal(q, [0, 2, 2, 0, -2, -2, 127, -127])
    u = quant.quantize(x, 1.0, 128, symmetric=False)
    np.testing.assert_array_equal(u, [128, 130, 130, 128, 126, 126, 255, 0])


def test_float32_scales_quantize_as_float64_division(rng):
    # The int8-weight engine stores float32 scales: quantizing with them divides in float64.
    w = rng.standard_normal((16, 40)).astype(np.float32)
    q, s = quant.quantize_per_channel(w, dtype=np.float32)
    assert s.dtype == np.float32
    rows = w.astype(np.float64) / s.astype(np.float64)[:, None]
    np.testing.assert_array_equal(q, np.clip(np.round(rows), -127, 127))


def test_bias_raises_the_weight_scale_only_where_needed():
    w = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    b = np.array([1e3, 1e-3])
    s = quant.weight_scales(w, bias=b, input_scale=1e-9)
    np.testing.assert_array_equal(s, [max(2 / 127, 1e3 / (1e-9 * 2**30)), 0.5 / 127])
    bq = quant.quantize_bias(b, 1e-9 * s)  # float64 bias: no float32 rounding
    assert np.abs(bq).max() <= quant.BIAS_LIMIT
    np.testing.assert_array_equal(bq, np.round(b / (1e-9 * s)))


@pytest.mark.parametrize("x", [np.zeros((3, 4)), np.full((3, 4), 2.5), np.array([[7.0]])],
                         ids=["all-zero", "constant", "single"])
def test_degenerate_tensors(x):
    x = x.astype(np.float32)
    q, s = quant.quantize_per_channel(x)
    assert np.all(np.isfinite(s)) and np.all(s > 0)
    np.testing.assert_allclose(quant.dequantize(q, s, 0, axis=0), x, atol=float(s.max()) / 2)
    obs = quant.MinMaxObserver(symmetric=False)
    obs(x)
    scale, zp = obs.calculate_qparams()
    assert np.isfinite(scale) and scale > 0 and 0 <= zp <= 255
    counts, edges = quant.histogram(x, 8)
    ref_counts, ref_edges = np.histogram(x, 8)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(edges, ref_edges)


def test_histogram_matches_numpy(rng):
    x = rng.standard_normal(5000).astype(np.float32)
    for bins, rng_ in ((64, None), (10, (-1.0, 1.0))):
        counts, edges = quant.histogram(x, bins, rng_)
        ref, ref_edges = np.histogram(x, bins, rng_)
        np.testing.assert_array_equal(counts, ref)
        np.testing.assert_allclose(edges, ref_edges, atol=1e-6)  # numpy computes float32 edges


def test_row_range_of_a_large_tensor_is_split_over_threads_exactly(rng):
    x = rng.standard_normal((64, 40000)).astype(np.float32)
    obs = quant.MinMaxObserver(axis=0)
    obs(x)
    np.testing.assert_array_equal(obs.min_val, x.min(axis=1))
    np.testing.assert_array_equal(obs.max_val, x.max(axis=1))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_tensor(bad):
    w = np.ones((3, 4, 2), np.float32)
    w[1, 2, 1] = bad
    with pytest.raises(ValueError, match=r"layer1\.weight contains (NaN|inf|-inf) at index \(1, 2, 1\)"):
        quant.quantize_per_channel(w, name="layer1.weight")
    with pytest.raises(ValueError, match=r"act contains .* at index \(1, 2, 1\)"):
        quant.MinMaxObserver(axis=2, name="act")(w)
    with pytest.raises(ValueError, match=r"x contains .* at index \(1, 2, 1\)"):
        quant.quantize(w, 1.0)
    with pytest.raises(ValueError, match=r"x contains"):
        quant.histogram(w, 4, (0.0, 1.0))


def test_bad_arguments_name_what_is_wrong():
    with pytest.raises(RuntimeError, match="no values observed"):
        quant.MinMaxObserver(name="conv1").calculate_qparams()
    with pytest.raises(ValueError, match="scale"):
        quant.quantize(np.ones(3, np.float32), 0.0)
    with pytest.raises(ValueError, match="scale"):
        quant.quantize(np.ones((2, 3), np.float32), [1.0, 2.0, 3.0], axis=0)
    with pytest.raises(ValueError, match="zero_point"):
        quant.quantize(np.ones(3, np.float32), 1.0, 300, symmetric=False)
    with pytest.raises(TypeError, match="q:"):
        quant.dequantize(np.ones(3, np.float32), 1.0)
    with pytest.raises(ValueError, match="bits"):
        quant.quantize(np.ones(3, np.float32), 1.0, bits=9)


def test_calibrate_observes_every_fused_tensor_by_layer_name(rng):
    import edgeopt as eo

    model = eo.models.create("resnet20", num_classes=10, width_mult=0.25).eval()
    calib = rng.integers(0, 256, (40, 3, 32, 32)).astype(np.uint8)
    obs = quant.calibrate(model, calib, (1, 3, 32, 32), num_samples=16)
    graph = eo.graph.fuse(eo.graph.trace(model, (1, 3, 32, 32)))
    assert "input" in obs and len(obs) == len(graph.points())
    assert all(n.name in obs for n in graph.nodes)
    # the input's observed range is that of the 16 preprocessed samples (no input_norm: x / 255)
    x = calib[:16].astype(np.float32) / 255
    assert obs["input"].min_val == float(x.min()) and obs["input"].max_val == float(x.max())
    for o in obs.values():
        scale, zp = o.calculate_qparams()
        assert np.isfinite(scale) and scale > 0 and 0 <= zp <= 255


def test_calibrate_rejects_bad_calibration_data():
    import edgeopt as eo

    model = eo.models.create("resnet20", num_classes=10, width_mult=0.25).eval()
    bad = np.zeros((4, 3, 32, 32), np.float32)
    bad[2, 1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^calib: sample 2 contains a non-finite value \(NaN\)"):
        quant.calibrate(model, bad)
    with pytest.raises(ValueError, match="calib: the calibration data is empty"):
        quant.calibrate(model, np.zeros((0, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="calib: expected samples of shape"):
        quant.calibrate(model, np.zeros((4, 3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="calib: calibrate needs calibration data"):
        quant.calibrate(model, None)


def test_quantize_weight_bias_keeps_the_bias_limit_with_float32_scales():
    """With tiny input scales weight_scales raises s_w so the bias fits BIAS_LIMIT; its float32 cast
    and the float32 bias scale s_in * s_w can round below that bound (measured: most of these
    draws), which quantize_weight_bias corrects. The codes are those of its float32 scales, and
    the bias is round(b / bs) at the returned float32 bias scale."""
    rng = np.random.default_rng(0)
    raised = 0
    for _ in range(200):
        w = rng.standard_normal((64, 9)).astype(np.float32) * 1e-3
        b = (rng.standard_normal(64) * 10).astype(np.float32)
        s_in = np.float32(rng.uniform(1e-9, 1e-8))
        q, s_w, bq, bs = quant.quantize_weight_bias(w, b, s_in)
        assert s_w.dtype == np.float32 and bs.dtype == np.float32
        assert np.all(np.abs(bq.astype(np.int64)) <= quant.BIAS_LIMIT)
        np.testing.assert_array_equal(bs, (s_in * s_w).astype(np.float32))
        np.testing.assert_array_equal(bq, quant.quantize_bias(b, bs))
        np.testing.assert_array_equal(q, quant.quantize(w, s_w.astype(np.float64), 0, 8, True, 0))
        _, s64 = quant.quantize_per_channel(w, 0, 8, bias=b, input_scale=s_in, dtype=np.float32)
        raised += int(np.any(s_w != s64))
    assert raised > 0   # the correction ran
    q, s_w, bq, bs = quant.quantize_weight_bias(np.ones((2, 3), np.float32), None, 0.1)
    assert bq is None and bs is None

"""Observers against numpy references written out here, hand-computed qparams, per-channel
behaviour, the histogram's growth, and int8-full's observer choice (fixed rules and the 'auto'
verify-and-retry)."""
import numpy as np
import pytest

import edgeopt as eo
from edgeopt import quant


def _data(seed=0, n=20000, outlier=25.0):
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    x[7] = outlier
    return x


def _qdq_mse(x, lo, hi, bits=8, symmetric=False):
    """Mean squared quantize-dequantize error of x with the range [lo, hi] (numpy, float64)."""
    s, z = quant.qparams(lo, hi, bits, symmetric)
    qmin, qmax = quant.qrange(bits, symmetric)
    q = np.clip(np.round(x.astype(np.float64) / s) + z, qmin, qmax)
    return float(np.mean((s * (q - z) - x) ** 2))


def test_moving_average_matches_the_formula():
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal(100).astype(np.float32) * (i + 1) for i in range(4)]
    obs = quant.MovingAverageMinMaxObserver(averaging_constant=0.25)
    lo, hi = float(batches[0].min()), float(batches[0].max())
    for i, b in enumerate(batches):
        obs(b)
        if i:
            lo += 0.25 * (float(b.min()) - lo)
            hi += 0.25 * (float(b.max()) - hi)
    assert obs.clip_range() == pytest.approx((lo, hi), rel=1e-12)
    assert obs.calculate_qparams() == quant.qparams(lo, hi, 8, False)


def test_histogram_counts_match_numpy_and_survive_growth():
    x = _data(2)
    obs = quant.HistogramObserver(bins=64)
    obs(x[:10000])
    ref, _ = np.histogram(x[:10000], bins=64, range=(float(x[:10000].min()), float(x[:10000].max())))
    np.testing.assert_array_equal(obs.counts[0], ref)
    obs(x[10000:] * 2.0)   # a wider batch: the range grows, no count is lost
    assert obs.counts.sum() == len(x)
    assert obs.edges[0].tolist() == [min(x[:10000].min(), 2 * x[10000:].min()), max(x[:10000].max(), 2 * x[10000:].max())]
    assert obs.clip_range("minmax") == (obs.min_val, obs.max_val)


def test_percentile_hand_cases_and_numpy():
    x = np.array([-1.0, 0.0, 1.0, 2.0], np.float32)
    full = quant.PercentileObserver(percentile=100.0)
    full(x)
    assert full.clip_range() == (-1.0, 2.0)   # the 100th percentile is the min / max, exactly
    assert full.calculate_qparams() == (3.0 / 255, 85)   # hand: S = 3 / 255, Z = round(1 / S)
    y = _data(3)
    obs = quant.PercentileObserver(percentile=99.0)
    obs(y)
    w = (float(y.max()) - float(y.min())) / obs.bins
    lo, hi = obs.clip_range()
    assert abs(lo - np.percentile(y, 1.0)) <= w and abs(hi - np.percentile(y, 99.0)) <= w


@pytest.mark.parametrize("symmetric", [False, True])
def test_mse_clips_outliers_and_beats_minmax_on_the_data(symmetric):
    x = np.abs(_data(4)) if not symmetric else _data(4)
    x[:5] = 40.0 if not symmetric else np.array([40, -40, 40, -40, 40], np.float32)
    mse, mm = quant.MSEObserver(symmetric=symmetric), quant.MinMaxObserver(symmetric=symmetric)
    mse(x)
    mm(x)
    lo, hi = mse.clip_range()
    assert hi < 40.0
    assert _qdq_mse(x, lo, hi, symmetric=symmetric) < _qdq_mse(x, *mm.clip_range(), symmetric=symmetric)
    # uniform data has nothing to clip: the range stays (almost) whole
    u = np.linspace(-1, 1, 4001, dtype=np.float32)
    full = quant.MSEObserver(symmetric=symmetric)
    full(u)
    assert full.clip_range()[1] >= 0.95


def _kl_reference(x, bins=2048, levels=128):
    """TensorRT-style entropy threshold over |x|, every candidate bin count (numpy)."""
    amax = float(np.abs(x).max())
    h, _ = np.histogram(np.abs(x), bins=bins, range=(0, amax))
    h = h.astype(np.float64)
    best, best_i = np.inf, bins
    for i in range(levels, bins + 1):
        p = h[:i].copy()
        p[-1] += h[i:].sum()
        q = np.zeros(i)
        edges = [(j * i) // levels for j in range(levels + 1)]
        for j in range(levels):
            a, b = edges[j], edges[j + 1]
            nz = h[a:b] > 0
            if nz.any():
                q[a:b][nz] = h[a:b].sum() / nz.sum()
        m = p > 0
        if q.sum() == 0:
            continue
        pn, qn = p[m] / p.sum(), q[m] / q.sum()
        kl = np.sum(pn * np.log(pn / np.maximum(qn, 1e-12)))
        if kl < best:
            best, best_i = kl, i
    return best_i * amax / bins


def test_kl_threshold_is_near_the_exhaustive_reference():
    x = _data(5, n=50000, outlier=30.0)
    obs = quant.KLObserver(symmetric=True, bins=512)
    obs(x)
    lo, hi = obs.clip_range()
    ref = _kl_reference(x, bins=512)
    assert lo == -hi and hi < 30.0
    # the observer tries 160 of the candidate bin counts: within a few bins of the full search
    assert abs(hi - ref) <= 8 * 30.0 / 512


def test_per_channel_is_each_channel_alone():
    w = np.random.default_rng(6).standard_normal((3, 4, 50)).astype(np.float32)
    w[1, 0, 0] = 9.0
    for name in ("minmax", "percentile", "mse", "kl"):
        per = quant.observer(name, symmetric=True, axis=0)
        per(w)
        lo, hi = per.clip_range()
        for c in range(3):
            one = quant.observer(name, symmetric=True)
            one(w[c])
            assert (lo[c], hi[c]) == pytest.approx(one.clip_range(), rel=1e-9), name
        s, z = per.calculate_qparams()
        assert s.shape == (3,) and np.all(z == 0)


def test_bad_observer_input():
    with pytest.raises(ValueError, match="observer"):
        quant.observer("entropy")
    obs = quant.KLObserver(name="conv1")
    with pytest.raises(RuntimeError, match="conv1"):
        obs.calculate_qparams()
    with pytest.raises(ValueError, match="conv1"):
        obs(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="percentile"):
        quant.PercentileObserver(percentile=120)
    with pytest.raises(ValueError, match="averaging_constant"):
        quant.MovingAverageMinMaxObserver(averaging_constant=0)
    per = quant.MSEObserver(axis=0)
    per(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="channels"):
        per(np.ones((2, 4), np.float32))


def _model_and_calib():
    eo.random.manual_seed(0)
    m = eo.models.create("resnet20", num_classes=10, width_mult=0.5)
    calib = np.random.default_rng(7).standard_normal((64, 3, 32, 32)).astype(np.float32)
    return m, calib


def test_int8_full_observer_choice_and_auto_report():
    m, calib = _model_and_calib()
    with pytest.raises(ValueError, match="observer"):
        eo.deploy.compile(m, "int8-full", calib=calib, observer="bogus")
    with pytest.raises(ValueError, match="observer"):
        eo.deploy.compile(m, "fp32", observer="mse")
    x = calib[:16]
    for name in ("percentile", "mse", "kl", "moving_average"):
        e = eo.deploy.compile(m, "int8-full", calib=calib, observer=name)
        assert e.metadata["int8_full"]["observer"] == name
        assert np.isfinite(e.run(x)).all()
    a = eo.deploy.compile(m, "int8-full", calib=calib, observer="auto")
    b = eo.deploy.compile(m, "int8-full", calib=calib, observer="auto")
    rows = a.metadata["int8_full"]["observers"]
    assert rows == b.metadata["int8_full"]["observers"]   # reproducible
    assert rows and rows[0]["tensor"] == "the graph input"
    for r in rows:   # each choice is the best of what was tried for its tensor
        assert r["divergence"][r["chosen"]] == min(r["divergence"].values())
    # the search only keeps improvements: the final error is at most min-max everywhere
    assert rows[-1]["divergence"][rows[-1]["chosen"]] <= rows[0]["divergence"]["minmax"]
    np.testing.assert_array_equal(a.run(x), b.run(x))


def test_engine_report_names_the_choices():
    m, calib = _model_and_calib()
    e = eo.deploy.compile(m, "int8-full", calib=calib, observer="auto")
    text = e.report()
    assert "observer='auto'" in text and "the graph input" in text
    assert len(text.splitlines()) == len(e.metadata["int8_full"]["observers"]) + 5   # + the GPTQ line
    assert text.splitlines()[-1].startswith("weight codes: rounding=gptq")
    assert "observer='kl'" in eo.deploy.compile(m, "int8-full", calib=calib, observer="kl").report()
    assert eo.deploy.compile(m, "fp32").report() == "scheme fp32"


def test_mse_range_error_from_prefix_sums_equals_the_pass_over_the_bins(rng):
    """The MSE search's error of a clipping range, computed from prefix sums, against the direct
    sum over every bin (the definition)."""
    from edgeopt.quant.observer import _clip_error

    v = np.sort(rng.standard_normal(300)) * 3
    c = rng.integers(0, 50, 300).astype(np.float64)
    a = -np.abs(rng.standard_normal(200)) * 3
    b = np.abs(rng.standard_normal(200)) * 3
    a[0], b[0] = v[10], v[-5]                   # ends on bin centres
    a[1], b[1] = v[0] - 1, v[-1] + 1            # the whole data inside
    direct = [float(np.where(v < x, (v - x) ** 2, np.where(v > y, (v - y) ** 2, ((y - x) / 255) ** 2 / 12)) @ c)
              for x, y in zip(a, b)]
    np.testing.assert_allclose(_clip_error(v, c, 255)(a, b), direct, rtol=1e-9, atol=1e-9)


def test_int4_full_auto_searches_with_the_4bit_weights_it_deploys():
    """int4-full's auto observer scores each range on the Engine it will build (4-bit weights):
    its divergence for the min/max start is the 4-bit Engine's, not the int8 one's."""
    m, calib = _model_and_calib()
    r8 = eo.deploy.compile(m, "int8-full", calib=calib, observer="auto").metadata["int8_full"]["observers"]
    r4 = eo.deploy.compile(m, "int4-full", calib=calib, observer="auto").metadata["int8_full"]["observers"]
    assert r4[0]["divergence"]["minmax"] > r8[0]["divergence"]["minmax"]

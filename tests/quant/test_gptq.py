"""GPTQ weight rounding (edgeopt.quant.gptq) and ``rounding="gptq"`` in the int8-full / int4-full
lowerings:

- the blocked Cholesky solver equals a plain Optimal Brain Quantization loop (explicit inverse,
  one column at a time, the inverse downdated after each) code for code, across block edges;
- with uncorrelated inputs (a diagonal Hessian) it is nearest rounding exactly;
- it never leaves a layer's output on its calibration inputs further from the float layer's than
  nearest rounding does, and at 4 bits brings it closer;
- the input statistics equal X^T X of an explicit im2col for plain, strided, grouped and
  depthwise convs and linear layers;
- an Engine built with it equals the numpy integer replay bit for bit, and its ONNX QDQ export
  carries the same codes (onnxruntime agrees with the Engine);
- bad arguments name themselves.
"""
import numpy as np
import pytest

import edgeopt as eo
import int8_sim
from edgeopt.deploy.lower.int8_full import quantize_graph
from edgeopt.graph import fold_batchnorm, trace


def _obq_reference(w, h, scale, bits, damp=eo.quant.DAMP):
    """Optimal Brain Quantization as first stated: columns in order of decreasing H_ii; after
    rounding column q every later column moves by -err / [H^-1]_qq * [H^-1]_q,:, and H^-1 drops
    row and column q by Gaussian elimination. One group; float64 throughout."""
    w = np.array(w, dtype=np.float64)
    h = np.array(h, dtype=np.float64)
    k = h.shape[0]
    d = np.diag(h).copy()
    h[np.arange(k), np.arange(k)] = np.where(d > 0, d, 1.0) + damp * d.mean()
    order = np.argsort(-np.diag(h), kind="stable")
    w, h = w[:, order], h[np.ix_(order, order)]
    hinv = np.linalg.inv(h)
    qmax = 2 ** (bits - 1) - 1
    q = np.zeros(w.shape, np.int64)
    for i in range(k):
        q[:, i] = np.clip(np.round(w[:, i] / scale), -qmax, qmax)
        err = (w[:, i] - q[:, i] * scale) / hinv[i, i]
        w[:, i:] -= np.outer(err, hinv[i, i:])
        hinv = hinv - np.outer(hinv[:, i], hinv[i, :]) / hinv[i, i]
    out = np.empty_like(q)
    out[:, order] = q
    return out


def _correlated(rng, n, k):
    mix = rng.standard_normal((k, k)) * 0.3 + np.eye(k)
    return rng.standard_normal((n, k)) @ mix + 0.5   # correlated, not centred (like activations)


@pytest.mark.parametrize("bits,k", [(8, 20), (4, 150), (2, 33)])
def test_gptq_equals_the_plain_obq_loop(rng, bits, k):
    x = _correlated(rng, 600, k)
    h = (x.T @ x)[None]
    w = rng.standard_normal((12, k)) * 0.2
    scale = eo.quant.weight_scales(w, bits=bits, dtype=np.float32)
    got = eo.quant.gptq_codes(w, h, scale, bits)
    assert got.dtype == np.int8 and got.shape == w.shape
    np.testing.assert_array_equal(got, _obq_reference(w, h[0], scale.astype(np.float64), bits))


def test_gptq_with_uncorrelated_inputs_is_nearest_rounding(rng):
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    h = np.diag(rng.uniform(0.5, 2.0, 27))[None]
    for bits in (8, 4):
        s = eo.quant.weight_scales(w, bits=bits, dtype=np.float32)
        want = eo.quant.quantize(w, s.astype(np.float64), 0, bits, True, 0)
        np.testing.assert_array_equal(eo.quant.gptq_codes(w, h, s, bits), want)


@pytest.mark.parametrize("bits", [8, 4])
def test_gptq_output_error_is_at_most_nearest(rng, bits):
    x = _correlated(rng, 2000, 64)
    w = rng.standard_normal((32, 64)) * 0.1
    s = eo.quant.weight_scales(w, bits=bits, dtype=np.float32).astype(np.float64)[:, None]
    nearest = eo.quant.quantize(w, s[:, 0], 0, bits, True, 0)
    gptq = eo.quant.gptq_codes(w, (x.T @ x)[None], s[:, 0], bits)
    assert np.abs(gptq).max() <= 2 ** (bits - 1) - 1

    def err(q):
        return float(np.sum(((w - s * q) @ x.T) ** 2))
    assert err(gptq) < err(nearest) * (0.9 if bits == 8 else 0.6)


def test_gptq_groups_solve_each_group_alone(rng):
    """A grouped layer's Hessian has one block per group; each group's rows equal a one-group
    solve on that block (a depthwise conv: one small problem per channel)."""
    g, r, k = 3, 2, 9
    w = rng.standard_normal((g * r, 1, 3, 3))
    hs = np.stack([(lambda x: x.T @ x)(_correlated(rng, 300, k)) for _ in range(g)])
    s = eo.quant.weight_scales(w, dtype=np.float32)
    got = eo.quant.gptq_codes(w, hs, s, 8)
    for j in range(g):
        rows = slice(j * r, (j + 1) * r)
        np.testing.assert_array_equal(got[rows], eo.quant.gptq_codes(w[rows], hs[j:j + 1], s[rows], 8))


def _im2col_reference(x, w_shape, stride, padding, groups):
    """Per group, the (rows, Cin/groups * kh * kw) patches by explicit loops."""
    n, c, h, ww = x.shape
    _, cg, kh, kw = w_shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (ww + 2 * padding[1] - kw) // stride[1] + 1
    out = np.zeros((groups, n * ho * wo, cg * kh * kw))
    for gi in range(groups):
        row = 0
        for b in range(n):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[b, gi * cg:(gi + 1) * cg, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
                    out[gi, row] = patch.reshape(-1)
                    row += 1
    return out


def test_input_hessians_equal_explicit_im2col(rng, monkeypatch):
    nn = eo.nn
    eo.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 6, (1, 3), groups=2),
                          nn.Flatten(), nn.Linear(6 * 4 * 2, 5))
    model.eval()
    x = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
    g0 = fold_batchnorm(trace(model, (1, 4, 8, 8)))
    hs = eo.quant.input_hessians(g0, [x[:2], x[2:]])
    seen = {}
    g0.execute(x, observe={n.inputs[0]: (lambda v, t=n.inputs[0]: seen.__setitem__(t, v.copy())) for n in g0.nodes})
    layers = [n for n in g0.nodes if n.op in ("conv2d", "linear")]
    assert set(hs) == {n.output for n in layers}
    monkeypatch.setattr(eo.quant.gptq, "_CHUNK_BYTES", 1)     # one image at a time: the same sums
    for t, h in eo.quant.input_hessians(g0, [x[:2], x[2:]]).items():
        np.testing.assert_allclose(h, hs[t], rtol=1e-5, atol=1e-5 * np.abs(h).max())
    for n in layers:
        v = seen[n.inputs[0]].astype(np.float64)
        if n.op == "linear":
            p = v.reshape(1, len(v), -1)
        else:
            p = _im2col_reference(v, n.params["weight"].shape, n.attrs["stride"], n.attrs["padding"], n.attrs["groups"])
        want = np.matmul(p.transpose(0, 2, 1), p)      # (float32 products per batch: single precision)
        np.testing.assert_allclose(hs[n.output], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def _trained_like(name):
    eo.manual_seed(0)
    m = eo.models.create(name, width_mult=0.5)
    x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    m.train()
    for _ in range(2):  # realistic BatchNorm statistics
        m.forward(x)
    m.eval()
    return m, x


@pytest.mark.parametrize("name,scheme", [("resnet20", "int8-full"), ("mobilenet_v2", "int4-full")])
def test_gptq_engine_equals_numpy_integer_simulation(name, scheme):
    model, calib = _trained_like(name)
    bits = 4 if scheme == "int4-full" else 8
    qg = quantize_graph(model, calib, (1, 3, 32, 32), weight_bits=bits, rounding="gptq")
    nearest = quantize_graph(model, calib, (1, 3, 32, 32), weight_bits=bits)
    moved = [not np.array_equal(a.attrs["weight"], b.attrs["weight"])
             for a, b in zip(qg.ops, nearest.ops) if a.op == "conv2d"]
    assert sum(moved) >= len(moved) // 2          # GPTQ changed the codes of most layers ...
    for a, b in zip(qg.ops, nearest.ops):          # ... on the same grids
        if a.op == "conv2d":
            np.testing.assert_array_equal(a.attrs["scale"], b.attrs["scale"])
    engine = eo.deploy.compile(model, scheme, (1, 3, 32, 32), calib=calib, rounding="gptq")
    assert engine.metadata["int8_full"]["rounding"] == "gptq" and "rounding=gptq" in engine.report()
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(engine.run(x), int8_sim.run(qg, x))


def test_gptq_rounding_memo_follows_the_weights(rng):
    """GPTQRounding remembers codes per layer, scales and weights: other weights on the same grid
    get their own codes, and a caller cannot change what it remembered."""
    x = _correlated(rng, 400, 8)
    r = eo.quant.GPTQRounding({7: (x.T @ x)[None]})
    w = rng.standard_normal((3, 8))
    s = eo.quant.weight_scales(w, dtype=np.float32)
    a = r(7, w, s, 4)
    a[...] = 0
    np.testing.assert_array_equal(r(7, w, s, 4), eo.quant.gptq_codes(w, (x.T @ x)[None], s, 4))
    w2 = w * 0.999
    w2[:, 0] = w[:, 0]          # the same max |w| per row, so the same scales
    w2[np.arange(3), np.abs(w).argmax(1)] = w[np.arange(3), np.abs(w).argmax(1)]
    np.testing.assert_array_equal(r(7, w2, s, 4), eo.quant.gptq_codes(w2, (x.T @ x)[None], s, 4))


def test_gptq_onnx_export_carries_the_engine_codes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model, calib = _trained_like("resnet20")
    engine = eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), calib=calib, rounding="gptq")
    path = eo.deploy.export_onnx(model, str(tmp_path / "m.onnx"), "int8", (1, 3, 32, 32), calib=calib,
                                 rounding="gptq")
    x = np.random.default_rng(6).standard_normal((4, 3, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, engine.run(x))


def test_gptq_bad_arguments(rng):
    model, calib = _trained_like("resnet20")
    with pytest.raises(ValueError, match="rounding"):
        eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), calib=calib, rounding="stochastic")
    with pytest.raises(ValueError, match="rounding"):
        eo.deploy.compile(model, "int8-weight", (1, 3, 32, 32), rounding="gptq")
    with pytest.raises(ValueError, match="calib"):
        eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), rounding="gptq")
    with pytest.raises(ValueError, match="rounding"):
        eo.deploy.export_onnx(model, "unused.onnx", "fp32", (1, 3, 32, 32), rounding="gptq")
    w = rng.standard_normal((4, 6))
    s = eo.quant.weight_scales(w, dtype=np.float32)
    with pytest.raises(ValueError, match="hessian"):
        eo.quant.gptq_codes(w, np.eye(5)[None], s)
    with pytest.raises(ValueError, match="hessian"):
        eo.quant.gptq_codes(w, np.stack([np.eye(6)] * 3), s)     # 3 groups do not divide 4 rows
    with pytest.raises(ValueError, match="bits"):
        eo.quant.gptq_codes(w, np.eye(6)[None], s, bits=9)
    with pytest.raises(ValueError, match="hessian"):
        eo.quant.gptq_codes(w, np.ones(6), s)
    with pytest.raises(ValueError, match="hessian"):
        eo.quant.gptq_codes(w, np.full((1, 6, 6), np.inf), s)
    with pytest.raises(ValueError, match="scale"):
        eo.quant.gptq_codes(w, np.eye(6)[None], s[:3])
    with pytest.raises(ValueError, match="damp"):
        eo.quant.gptq_codes(w, np.eye(6)[None], s, damp=-1.0)
    bad = w.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        eo.quant.gptq_codes(bad, np.eye(6)[None], s)
    huge = dict(model.named_modules())["conv1"].weight
    huge.data[...] = 3e38      # finite weights whose products overflow float32
    with pytest.raises(ValueError, match="non-finite"):
        eo.deploy.compile(model, "int4-weight", (1, 3, 32, 32), calib=calib, rounding="gptq")


@pytest.mark.parametrize("scheme", ["int8-weight", "int4-weight", "int2-weight"])
def test_gptq_weight_only_schemes(scheme):
    """Weight-only schemes take rounding='gptq' with calib: the same file size (same codes' width
    and grid), and logits on the calibration images closer to the fp32 Engine's."""
    model, calib = _trained_like("resnet20")
    f32 = eo.deploy.compile(model, "fp32", (1, 3, 32, 32)).run(calib)
    nearest = eo.deploy.compile(model, scheme, (1, 3, 32, 32))
    gptq = eo.deploy.compile(model, scheme, (1, 3, 32, 32), calib=calib, rounding="gptq")
    assert gptq.metadata["weights"] == {"rounding": "gptq"} and "weights" not in nearest.metadata
    assert "rounding=gptq" in gptq.report() and "gptq" not in nearest.report()
    assert gptq.size_bytes == pytest.approx(nearest.size_bytes, abs=64)
    err = {k: float(np.mean((e.run(calib) - f32) ** 2)) for k, e in (("nearest", nearest), ("gptq", gptq))}
    assert err["gptq"] < 0.5 * err["nearest"], err
    with pytest.raises(ValueError, match="calib"):
        eo.deploy.compile(model, scheme, (1, 3, 32, 32), rounding="gptq")


def test_auto_observer_rounds_by_gptq_unless_told():
    """observer='auto' searches for the most faithful Engine, GPTQ rounding included by default;
    rounding='nearest' turns it off; a fixed rule rounds to nearest unless asked."""
    model, calib = _trained_like("resnet20")
    calib = calib[:8]

    def rounding(**kw):
        return eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), calib=calib, **kw).metadata["int8_full"]["rounding"]
    assert rounding(observer="auto") == "gptq"
    assert rounding(observer="auto", rounding="nearest") == "nearest"
    assert rounding() == "nearest" and rounding(observer="mse") == "nearest"
    assert rounding(observer="mse", rounding="gptq") == "gptq"

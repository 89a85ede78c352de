"""The deploy runtime end to end: compile -> bytes -> Engine, against the Python model (fp32) and
numpy simulations of the deployed weights (fp16, int8-weight); every ISA path; save/load; threads;
bad input."""
import threading

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import deploy
from deploy_helpers import MODELS, realistic, rel_err, simulate
from tolerances import TOL
from isa_paths import ISAS


@pytest.fixture(scope="module")
def models():
    eo.manual_seed(0)
    return {name: realistic(eo.models.create(name), seed=i) for i, name in enumerate(MODELS)}


@pytest.fixture(scope="module")
def x3():
    return np.random.default_rng(7).standard_normal((3, 3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_fp32_engine_matches_model(models, x3, name):
    m = models[name]
    ref = m.forward(x3)
    e = deploy.compile(m, "fp32")
    assert np.abs(ref).max() > 1e-2  # realistic BN statistics: no collapse to zero
    assert rel_err(e.run(x3), ref) < TOL["f32"].rtol
    assert rel_err(e.run(x3[:1]), ref[:1]) < TOL["f32"].rtol
    assert e.run(x3).shape == (3, 10)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("scheme", ["fp16", "int8-weight", "int4-weight", "int2-weight", "binary"])
def test_weight_schemes_match_simulation(models, x3, name, scheme):
    m = models[name]
    e = deploy.compile(m, scheme)
    sim = simulate(m, x3, scheme)
    tol = TOL["f32"].rtol
    if (scheme, name) in (("int2-weight", "mobilenet_v3_small"), ("binary", "mobilenet_v3_small")):
        # 2-bit and binary weights make mobilenet_v3_small (random BN statistics, SE, hard-swish)
        # ill-conditioned: on this fixture the simulation itself moves by 3e-4 when the input is
        # scaled by 1 + 1e-7 and by 1e-2 at 1 + 1e-6 (measured), so any other rounding (the Engine's
        # kernels) is held to what an input change of a few ulps does to the simulation
        wiggle = simulate(m, (x3 * np.float32(1 + 1e-6)).astype(np.float32), scheme)
        tol = max(2e-3, 2 * rel_err(wiggle, sim))
    assert rel_err(e.run(x3), sim) < tol
    assert rel_err(e.run(x3[1:2]), sim[1:2]) < tol
    # and close to the fp32 model (the error the scheme itself costs; 4 / 2 bits cost far more)
    if scheme in ("fp16", "int8-weight"):
        assert rel_err(e.run(x3), m.forward(x3)) < TOL["f16-weight" if scheme == "fp16" else "int8-weight"].rtol


def test_weight_scheme_sizes(models):
    m = models["resnet20"]
    sizes = {s: deploy.compile(m, s).size_bytes
             for s in ("fp32", "fp16", "int8-weight", "int4-weight", "int2-weight", "binary")}
    assert 0.45 < sizes["fp16"] / sizes["fp32"] < 0.55
    assert 0.22 < sizes["int8-weight"] / sizes["fp32"] < 0.3
    # codes at 1/8 and 1/16 of f32, plus per-channel scales, biases and the graph
    assert 0.11 < sizes["int4-weight"] / sizes["fp32"] < 0.15
    assert 0.05 < sizes["int2-weight"] / sizes["fp32"] < 0.09
    assert sizes["binary"] / sizes["fp32"] < 0.06   # the issue asks <= 8 % (8-bit first and last layers)
    summary = deploy.compile(m, "int4-weight").summary()
    assert any("w:i4" in r["info"] for r in summary)


@pytest.mark.parametrize("scheme", ["fp32", "fp16", "int8-weight", "int4-weight", "int2-weight", "binary"])
def test_every_isa_path(models, x3, scheme):
    paths = ISAS
    saved = eo._core.runtime.active_isa()
    out = {}
    try:
        for name in ("mobilenet_v3_small", "resnet20"):
            if scheme in ("int2-weight", "binary") and name == "mobilenet_v3_small":
                continue  # ill-conditioned at 2 bits (test_weight_schemes_match_simulation)
            m = models[name]
            ref = m.forward(x3) if scheme == "fp32" else simulate(m, x3, scheme)
            e = deploy.compile(m, scheme)  # packed for the active path; others are packed lazily
            for isa in paths:
                eo._core.runtime.set_isa(isa)
                out[isa] = e.run(x3)
                assert rel_err(out[isa], ref) < TOL["f32"].rtol, (name, isa)
                assert rel_err(e.run(x3[:1]), ref[:1]) < TOL["f32"].rtol, (name, isa)
    finally:
        eo._core.runtime.set_isa(saved)


def test_threads_one_and_many(models, x3):
    e = deploy.compile(models["mobilenet_v2"])
    n = eo.get_num_threads()
    try:
        eo.set_num_threads(1)
        y1 = e.run(x3)
        eo.set_num_threads(max(2, n))
        y2 = e.run(x3)
        assert np.array_equal(e.run(x3), y2)  # deterministic for a thread count
    finally:
        eo.set_num_threads(n)
    assert rel_err(y1, y2) < TOL["f32-op"].rtol


# Geometries where one image is split over threads by output rows or columns (with halo rows and
# row pitches that wrap into the next row and the next channel's plane) or by output channels,
# strided ones, and a layer too small to split. Batch 1 on 1..4 threads must equal the model: every split of a
# single image computes the same values as the whole image.
@pytest.mark.parametrize("cin,cout,hw,k,stride,pad", [
    (16, 16, 32, 3, 1, 1), (32, 32, 16, 3, 1, 1), (64, 64, 8, 3, 1, 1), (16, 32, 32, 3, 2, 1),
    (32, 64, 16, 3, 2, 1), (16, 32, 32, 1, 2, 0), (3, 16, 32, 3, 1, 1), (8, 24, 15, 5, 1, 2),
    (16, 16, 7, 3, 1, 1), (4, 4, 5, 3, 1, 1), (8, 16, 17, 3, 3, 1), (8, 8, 15, 5, 2, 2), (8, 8, 16, 7, 4, 3),
    (8, 8, 16, 7, 1, 3), (64, 64, 4, 3, 1, 1), (16, 8, 23, 1, 1, 0)])
@pytest.mark.parametrize("scheme", ["fp32", "fp16"])
def test_single_image_split_over_threads(cin, cout, hw, k, stride, pad, scheme):
    eo.manual_seed(1)
    m = eo.nn.Sequential(eo.nn.Conv2d(cin, cout, k, stride=stride, padding=pad), eo.nn.ReLU())
    m.eval()
    x = np.random.default_rng(3).standard_normal((1, cin, hw, hw)).astype(np.float32)
    e = deploy.compile(m, scheme, input_shape=(1, cin, hw, hw))
    ref = m.forward(x) if scheme == "fp32" else simulate(m, x, scheme, input_shape=x.shape)
    n, saved = eo.get_num_threads(), eo._core.runtime.active_isa()
    try:
        for isa in ISAS:
            eo._core.runtime.set_isa(isa)
            for threads in (1, 2, 3, 4):
                eo.set_num_threads(threads)
                assert rel_err(e.run(x), ref) < TOL["f32-op"].rtol, (isa, threads)
    finally:
        eo.set_num_threads(n)
        eo._core.runtime.set_isa(saved)


def test_save_load_roundtrip(models, x3, tmp_path):
    for scheme in ("fp32", "fp16", "int8-weight"):
        e = deploy.compile(models["mobilenet_v3_small"], scheme)
        p = tmp_path / f"m_{scheme}.edgeopt"
        e.save(p)
        assert p.stat().st_size == e.size_bytes
        e2 = deploy.load(p)
        assert np.array_equal(e2.run(x3), e.run(x3))
        e2.save(tmp_path / "again.edgeopt")
        assert (tmp_path / "again.edgeopt").read_bytes() == p.read_bytes()
        assert e2.scheme == scheme and e2.num_classes == 10 and e2.input_shape == (3, 32, 32)
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_compile_is_deterministic(models):
    m = models["resnet20"]
    assert deploy.compile(m).to_bytes() == deploy.compile(m).to_bytes()


def test_concurrent_callers(models):
    e = deploy.compile(models["mobilenet_v3_small"])
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((b, 3, 32, 32)).astype(np.float32) for b in (1, 2, 3, 5)]
    want = [e.run(x) for x in xs]
    got, errors = {}, []

    def worker(t):
        try:
            for it in range(6):
                i = (t + it) % len(xs)
                got.setdefault((t, i), []).append(e.run(xs[i]))
        except Exception as ex:  # pragma: no cover - reported below
            errors.append(ex)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (t, i), ys in got.items():
        for y in ys:
            assert np.array_equal(y, want[i])


def test_bad_input(models, x3):
    e = deploy.compile(models["resnet20"])
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3, 32, 32\)"):
        e.run(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="x: expected"):
        e.run(np.zeros((0, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="4-d"):
        e.run(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(TypeError, match="float32"):
        e.run(x3.astype(np.float64))
    with pytest.raises(TypeError, match="x: expected a numpy.ndarray"):
        e.run([[1.0]])
    y = e.run(np.asfortranarray(x3))  # non-contiguous float32 is copied, not rejected
    assert np.array_equal(y, e.run(x3))
    xn = x3.copy()
    xn[0, 0, 0, 0] = np.nan
    assert np.isnan(e.run(xn)[0]).any()  # NaN propagates, no error


def test_unknown_scheme_and_unsupported_layer(models):
    with pytest.raises(ValueError, match="scheme: expected one of 'fp32', 'fp16', 'int8-weight'"):
        deploy.compile(models["resnet20"], "int4")
    m = eo.models.create("resnet20", shortcut="A")
    with pytest.raises(ValueError, match="has no inference operator"):
        deploy.compile(m)


def test_input_norm_metadata_and_evaluate(models):
    m = models["resnet20"]
    m.input_norm = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    try:
        e = deploy.compile(m)
    finally:
        del m.input_norm
    assert e.input_norm == {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    assert e.metadata["input_norm_applied"] is False
    assert e.metadata["edgeopt_version"] == eo.__version__
    _, data = eo.data.synthetic(num_classes=10, shape=(3, 32, 32), n_train=0, n_test=40, seed=0)
    m.input_norm = e.input_norm
    try:
        rm, re_ = eo.train.evaluate(m, data), eo.train.evaluate(e, data)
    finally:
        del m.input_norm
    assert rm["acc"] == re_["acc"] and abs(rm["loss"] - re_["loss"]) < 1e-4

def test_summary_and_memory_plan(models):
    e = deploy.compile(models["mobilenet_v2"])
    s = e.summary()
    assert len(s) == e._core.num_ops and "conv2d" in str(s)
    total = sum(r["output_bytes"] for r in s)
    assert 0 < e.peak_activation_bytes < total / 3  # buffers are reused
    assert s.total_macs > 5e6
    assert any("relu6" in r["info"] for r in s) and any("+res" in r["info"] for r in s)
    assert e.activation_bytes(4) >= 4 * e.peak_activation_bytes


def test_profile_times_every_op(models):
    e = deploy.compile(models["resnet20"])
    p = e.profile(runs=3, warmup=1)
    assert [r["name"] for r in p] == [r["name"] for r in e.summary()]
    assert all(r["ms"] >= 0 for r in p) and sum(r["ms"] for r in p) > 0  # a view op may take 0
    # the ops' times add up to no more than a whole call (which adds the copies and the call)
    assert sum(r["ms"] for r in p) <= deploy.latency(e, runs=5)["median_ms"] * 3
    convs = [r["ms"] for r in p if r["op"] == "conv2d"]
    assert max(convs) > min(r["ms"] for r in p if r["op"] != "conv2d")  # a conv outweighs the cheapest op
    text = str(p)
    assert " ms " in text.splitlines()[0] + " " and "ms in ops" in text
    with pytest.raises(ValueError, match="runs"):
        e.profile(runs=0)
    with pytest.raises(ValueError, match="x"):
        e.profile(np.zeros((1, 3, 8, 8), np.float32))


def test_latency_report(models):
    e = deploy.compile(models["resnet20"])
    r = deploy.latency(e, batch=2, warmup=1, runs=5)
    assert set(r) >= {"median_ms", "p90_ms", "mean_ms", "runs", "threads", "isa"}
    assert r["runs"] == 5 and r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] * 0.999
    with pytest.raises(ValueError, match="runs"):
        deploy.latency(e, runs=0)

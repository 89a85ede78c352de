"""int8-full deployment (edgeopt.quant, edgeopt.deploy.lower.int8_full, the qs8 runtime ops):

- quantization parameters follow DESIGN.md's S/Z formulas;
- the compiled int8 Engine equals a numpy integer replay of the same quantized graph
  (tests/int8_sim.py, independent of the C++ code) bit for bit, for resnet20, mobilenet_v2 and
  mobilenet_v3_small (SE + hardswish) at batch 1 and 2;
- a small model trained on Fashion-MNIST keeps its accuracy within ~1 point when run as int8;
- batch-1 int8 latency is at least 1.5x below fp32 on resnet20 and mobilenet_v2 (CIFAR size).
"""
import numpy as np
import pytest

import edgeopt as eo
import edgeopt.deploy  # noqa: F401
import int8_sim
from edgeopt.deploy.lower.int8_full import QS8_OPS, emit, quantize_graph


# ---------------------------------------------------------------------------- qparams
def test_qparams_asymmetric_and_symmetric():
    s, z = eo.quant.qparams(-1.0, 3.0, symmetric=False)
    assert s == pytest.approx(4.0 / 255) and z == 64          # Z = round(255 - 3 / S) = round(63.75)
    s, z = eo.quant.qparams(0.5, 3.0, symmetric=False)        # the range is widened to include 0
    assert s == pytest.approx(3.0 / 255) and z == 0
    s, z = eo.quant.qparams(-2.0, 1.0, symmetric=True)        # S = r / 127 (s = 127 / r quantizes)
    assert s == pytest.approx(2.0 / 127) and z == 0
    s, z = eo.quant.qparams(-8.0, 4.0, bits=4, symmetric=True)
    assert s == pytest.approx(8.0 / 7)
    assert eo.quant.qparams(0.0, 0.0, symmetric=False) == (1.0, 0)
    scales, zps = eo.quant.qparams(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), symmetric=False)
    np.testing.assert_allclose(scales, [2 / 255, 2 / 255])
    np.testing.assert_array_equal(zps, [128, 0])
    with pytest.raises(ValueError, match="xmin <= xmax"):
        eo.quant.qparams(1.0, -1.0)
    with pytest.raises(ValueError, match="bits"):
        eo.quant.qparams(-1.0, 1.0, bits=1)


def test_minmax_observer_and_requantization_factors(rng):
    obs = eo.quant.MinMaxObserver(symmetric=False)
    with pytest.raises(RuntimeError):
        obs.calculate_qparams()
    obs(np.array([0.5, 2.0]))
    obs(np.array([-1.0, 1.0]))
    assert (obs.min_val, obs.max_val) == (-1.0, 2.0)
    assert obs.calculate_qparams() == eo.quant.qparams(-1.0, 2.0, symmetric=False)
    per_ch = eo.quant.MinMaxObserver(symmetric=True, axis=0)
    per_ch(np.array([[1.0, -3.0], [0.5, 0.25]]))
    np.testing.assert_allclose(per_ch.calculate_qparams()[0], [3 / 127, 0.5 / 127])
    # requantization factors: float32, in onnxruntime's order (s_in * s_w) / s_out
    f = np.float32
    np.testing.assert_array_equal(eo.quant.requant_scale(0.5, [0.25, 0.125], 2.0), f([0.0625, 0.03125]))
    for s_in, s_w, s_out in rng.uniform(1e-4, 1.0, (200, 3)):
        got = eo.quant.requant_scale(s_in, s_w, s_out)
        assert got.dtype == np.float32 and got == (f(s_in) * f(s_w)) / f(s_out)
    assert eo.quant.requant_scale(1.0, 3.0, 0.5) == 6.0       # factors >= 1 are fine
    assert eo.quant.average_scale(1.0, 0.5, 4) == 0.5 and eo.quant.average_scale(0.3, 0.1, 1) == f(0.3) / f(0.1)
    assert tuple(eo.quant.add_scales(0.5, 10, 0.25, 20, 1.0, 3)) == (0.5, 0.25, -7.0)
    for bad in (float("nan"), 0.0, -0.5, float("inf")):
        with pytest.raises(ValueError, match="s_out"):
            eo.quant.requant_scale(0.5, 0.5, bad)
    with pytest.raises(ValueError, match="count"):
        eo.quant.average_scale(0.5, 0.5, 0)
    with pytest.raises(ValueError, match="z_y"):
        eo.quant.add_scales(0.5, 0, 0.5, 0, 0.5, 256)


# ---------------------------------------------------------------------------- exactness
def _model(name, **kw):
    eo.manual_seed(0)
    m = eo.models.create(name, **kw)
    x = np.random.default_rng(0).standard_normal((32,) + ((3, 32, 32))).astype(np.float32)
    m.train()
    for _ in range(2):  # realistic BatchNorm statistics
        m.forward(x)
    m.eval()
    return m, x


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2", "mobilenet_v3_small"])
def test_int8_engine_equals_numpy_integer_simulation(name):
    model, calib = _model(name)
    qg = quantize_graph(model, calib, (1, 3, 32, 32))
    ops = {o.op for o in qg.ops}
    assert {"quantize", "conv2d", "global_avgpool2d", "dequantize"} <= ops
    if name == "mobilenet_v3_small":
        assert "channel_scale" in ops and any("lut" in o.attrs for o in qg.ops)
    if name == "resnet20":
        assert sum("add" in o.attrs for o in qg.ops) == 9       # residual adds fused into convs
    engine = eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), calib=calib)
    assert engine.scheme == "int8-full"
    for batch in (1, 2):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        y = engine.run(x)
        want = int8_sim.run(qg, x)
        assert y.dtype == np.float32 and y.shape == (batch, 10)
        np.testing.assert_array_equal(y, want)
        f = model.forward(x)
        assert np.corrcoef(f.ravel(), y.ravel())[0, 1] > 0.99   # and it is a good approximation


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2"])
def test_int4_full_engine_equals_numpy_integer_simulation(name):
    """int4-full: 4-bit weights (q in [-7, 7]) in every conv / linear but the first, the last and
    depthwise ones, stored packed (i4 blobs, half the bytes) and widened inside the integer
    kernels; the Engine equals the integer simulation of the same QGraph bit for bit."""
    model, calib = _model(name)
    qg = quantize_graph(model, calib, (1, 3, 32, 32), weight_bits=4)
    convs = [o for o in qg.ops if o.op == "conv2d"]
    four = [o for o in convs if o.attrs.get("weight_bits") == 4]
    assert four and convs[0] not in four and convs[-1] not in four
    assert all(np.abs(o.attrs["weight"]).max() <= 7 for o in four)
    assert all(o.attrs["groups"] == 1 for o in four)          # depthwise stays 8-bit
    e4 = eo.deploy.compile(model, "int4-full", (1, 3, 32, 32), calib=calib)
    e8 = eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), calib=calib)
    assert e4.scheme == "int4-full" and sum(" w4" in r["info"] for r in e4.summary()) == len(four)
    w8 = sum(o.attrs["weight"].size for o in four)
    assert e8.size_bytes - e4.size_bytes >= w8 // 2 - 64       # those weights take half the bytes
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        np.testing.assert_array_equal(e4.run(x), int8_sim.run(qg, x))
    with pytest.raises(ValueError, match="calib"):
        eo.deploy.compile(model, "int4-full", (1, 3, 32, 32))


def test_int8_engine_save_load_and_thread_counts(tmp_path):
    model, calib = _model("resnet20", width_mult=0.5)
    engine = eo.deploy.compile(model, "int8-full", (1, 3, 32, 32), calib=calib)
    x = np.random.default_rng(3).standard_normal((3, 3, 32, 32)).astype(np.float32)
    y = engine.run(x)
    engine.save(tmp_path / "m.edgeopt")
    np.testing.assert_array_equal(eo.deploy.load(tmp_path / "m.edgeopt").run(x), y)
    threads, isa = eo.get_num_threads(), eo._core.runtime.active_isa()
    try:
        eo.set_num_threads(1)
        np.testing.assert_array_equal(engine.run(x), y)
        for lower in ("avx2", "scalar"):   # other GEMM / depthwise / elementwise paths, same bytes
            eo._core.runtime.set_isa(lower)
            np.testing.assert_array_equal(engine.run(x), y)
    finally:
        eo.set_num_threads(threads)
        eo._core.runtime.set_isa(isa)


def test_conv_scales_are_float32_blobs_and_files_with_bad_or_old_scales_are_rejected():
    model, calib = _model("resnet20", width_mult=0.25)
    qg = quantize_graph(model, calib, (1, 3, 32, 32))
    convs = [op for op in qg.ops if op.op == "conv2d"]
    assert all(op.attrs["scale"].dtype == np.float32 and op.attrs["scale"].shape == (op.attrs["weight"].shape[0],)
               for op in convs)
    conv = convs[3]
    good = conv.attrs["scale"]
    for bad in (np.nan, np.inf, 0.0, -1.0):
        conv.attrs["scale"] = good.copy()
        conv.attrs["scale"][1] = bad
        b, out = emit(qg)
        with pytest.raises(ValueError, match="scale"):
            eo.deploy.Engine(b.to_bytes(out, {}))
    # the layout of files from before float32 requantization: Q31 multipliers and shifts
    del conv.attrs["scale"]
    conv.attrs["multiplier"] = np.full(len(good), 1 << 30, np.int32)
    conv.attrs["shift"] = np.zeros(len(good), np.uint8)
    b, out = emit(qg)
    with pytest.raises(ValueError, match="compile the model again"):
        eo.deploy.Engine(b.to_bytes(out, {}))


@pytest.mark.parametrize("op", ["quantize", "global_avgpool2d", "channel_scale", "avgpool2d"])
def test_bad_requantization_factors_of_the_other_int8_ops_are_rejected(op):
    """A factor that is not a finite float32 > 0, or a clamp upside down, in any int8 op of a file
    gives a ValueError naming it (mobilenet_v3_small has the first three, a pool model the last)."""
    if op == "avgpool2d":
        from edgeopt import nn
        eo.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AvgPool2d(2, 2), nn.Flatten(), nn.Linear(8 * 8 * 8, 4))
        model.eval()
        calib = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
        qg = quantize_graph(model, calib, (1, 3, 16, 16))
    else:
        model, calib = _model("mobilenet_v3_small", width_mult=0.25)
        qg = quantize_graph(model, calib, (1, 3, 32, 32))
    node = next(o for o in qg.ops if o.op == op)
    good = node.attrs["scale"]
    for bad in (float("nan"), 0.0, -1.0, 1e39):
        node.attrs["scale"] = tuple([bad] * len(good)) if isinstance(good, tuple) else bad
        b, out = emit(qg)
        with pytest.raises(ValueError, match="scale"):
            eo.deploy.Engine(b.to_bytes(out, {}))
    node.attrs["scale"] = good
    if "clamp" in node.attrs:
        node.attrs["clamp"] = (200, 100)
        b, out = emit(qg)
        with pytest.raises(ValueError, match="clamp"):
            eo.deploy.Engine(b.to_bytes(out, {}))


def test_int8_lowering_of_pools_flatten_and_standalone_ops():
    """maxpool, avgpool (padding, both divisor modes), a standalone add, an unfused activation
    table and a flatten of a 2x2 map in front of a linear layer (weights permuted to NHWC)."""
    from edgeopt import nn

    eo.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2, 2), nn.Sigmoid(),
                          nn.AvgPool2d(3, 2, 1, count_include_pad=False), nn.AvgPool2d(2, 2),
                          nn.HardSwish(), nn.Flatten(), nn.Linear(8 * 2 * 2, 5))
    model.eval()
    calib = np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)
    qg = quantize_graph(model, calib, (1, 3, 16, 16))
    assert [o.op for o in qg.ops] == ["quantize", "conv2d", "maxpool2d", "lut", "avgpool2d", "avgpool2d",
                                      "lut", "flatten", "conv2d", "dequantize"]
    b, out = emit(qg)
    engine = eo.deploy.Engine(b.to_bytes(out, {"scheme": "int8-full"}))
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(engine.run(x), int8_sim.run(qg, x))
    assert np.abs(engine.run(x) - model.forward(x)).max() < 0.05 * np.abs(model.forward(x)).max() + 0.02


def test_int8_full_needs_calibration_and_rejects_bad_files():
    model, calib = _model("resnet20", width_mult=0.25)
    with pytest.raises(ValueError, match="calib"):
        eo.deploy.compile(model, "int8-full", (1, 3, 32, 32))
    qg = quantize_graph(model, calib, (1, 3, 32, 32))
    conv = next(o for o in qg.ops if o.op == "conv2d" and "add" in o.attrs)
    good = conv.attrs["add"]
    for i, bad in ((0, float("nan")), (1, 0.0), (2, float("inf"))):
        add = list(good)
        add[i] = bad   # a factor that is not > 0, an offset that is not finite
        conv.attrs["add"] = tuple(add)
        b, out = emit(qg)
        with pytest.raises(ValueError, match="add"):
            eo.deploy.Engine(b.to_bytes(out, {}))
    conv.attrs["add"] = good
    conv.attrs["add_clamp"] = (200, 100)
    b, out = emit(qg)
    with pytest.raises(ValueError, match="add"):
        eo.deploy.Engine(b.to_bytes(out, {}))
    conv.attrs.pop("add_clamp")
    conv.attrs["add"] = (3, 1 << 30, 0, 5, 1 << 30, 0, 1 << 30, 20, 7, 0, 255)   # the old 11-int form
    b, out = emit(qg)
    with pytest.raises(ValueError, match="compile the model again"):
        eo.deploy.Engine(b.to_bytes(out, {}))
    conv.attrs.pop("add")  # a residual input without its parameters
    b, out = emit(qg)
    with pytest.raises(ValueError, match="residual"):
        eo.deploy.Engine(b.to_bytes(out, {}))
    assert set(QS8_OPS.values()) == set(range(100, 110))


# ---------------------------------------------------------------------------- accuracy
def test_int8_accuracy_close_to_fp32_on_fashion_mnist():
    train, test = eo.data.fashion_mnist()
    sub, val = train.subset(np.arange(6000)), test.subset(np.arange(2000))
    eo.manual_seed(0)
    model = eo.models.create("resnet20", num_classes=10, in_channels=1, width_mult=0.25)
    eo.train.fit(model, sub, epochs=1, batch_size=64, lr=0.1, progress=False)
    fp32 = eo.train.evaluate(eo.deploy.compile(model, "fp32", (1, 1, 28, 28)), val)["acc"]
    int8 = eo.train.evaluate(eo.deploy.compile(model, "int8-full", (1, 1, 28, 28), calib=sub), val)["acc"]
    assert fp32 > 0.6, fp32                 # the model learned something
    assert abs(int8 - fp32) <= 0.015, (fp32, int8)


def test_int8_full_runs_an_op_without_integer_kernel_in_float_and_reports_it():
    """A BatchNorm after a ReLU has no conv to fold into and no integer operator: it runs in f32
    between a dequantize and a quantize, and the Engine says so."""
    eo.manual_seed(0)
    nn = eo.nn
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1),
                      nn.ReLU(), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(8, 4))
    rng = np.random.default_rng(0)
    bn = m[2]
    bn.running_mean[:] = rng.random(8)
    bn.running_var[:] = rng.random(8) + 0.5
    bn.weight.data[:] = rng.random(8) + 0.5
    m.eval()
    x = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    e = eo.deploy.compile(m, "int8-full", input_shape=(1, 3, 16, 16), calib=x)
    assert e.metadata["int8_full"]["fallbacks"] == ["2 (batchnorm2d)"]
    assert "float fallbacks (1" in e.report() and "2 (batchnorm2d)" in e.report()
    ops = [r["op"] for r in e.summary()]
    assert ops[2:5] == ["qs8_dequantize", "channel_affine", "qs8_quantize"]
    a, b = m(x), e.run(x)
    assert np.abs(a - b).max() <= 0.05 * np.ptp(a)

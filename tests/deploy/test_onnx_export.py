"""ONNX export (edgeopt.deploy.export_onnx), checked by running the file in onnxruntime.

Oracles: the edgeopt model's eval forward for fp32; for the int8 QDQ model a numpy simulation of
QDQ written here from the rule in onnx_export's docstring (quantize -> dequantize at every
quantization point, fp32 compute in between), with the scales and zero points read from the file,
and the int8-full Engine itself, compared in steps of its logits' scale.
"""
import copy
import os

import numpy as np
import pytest

import edgeopt as eo
from edgeopt.deploy import export_onnx
from edgeopt.deploy.lower.int8_full import quantize_graph
from edgeopt.graph import fuse, trace
from edgeopt.nn import functional as F

import onnx  # noqa: E402  (an oracle: the suite must fail, not skip, without it)
import onnxruntime as ort  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from tolerances import TOL

SHAPE = (1, 3, 32, 32)
# small widths keep each export + session under a second
ZOO = [("resnet20", 0.25), ("mobilenet_v2", 0.25), ("mobilenet_v3_small", 0.25), ("vgg11", 0.125)]


def _session(path, optimize=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), so, providers=["CPUExecutionProvider"])


def _randomize_bn(model, rng):
    """Non-trivial BatchNorm statistics, so folding them into the conv is really exercised."""
    for name, m in model.named_modules():
        if isinstance(m, eo.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean[...] = rng.normal(0, 0.2, c).astype(np.float32)
            m.running_var[...] = rng.uniform(0.5, 2.0, c).astype(np.float32)
            m.weight.data[...] = rng.uniform(0.5, 1.5, c).astype(np.float32)
            m.bias.data[...] = rng.normal(0, 0.1, c).astype(np.float32)
    return model


def _rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


# --------------------------------------------------------------------------- fp32

@pytest.mark.parametrize("name,width", ZOO)
def test_fp32_matches_forward_dynamic_batch(tmp_path, rng, name, width):
    model = _randomize_bn(eo.models.create(name, num_classes=10, width_mult=width), rng)
    model.eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    proto = onnx.load(path)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops  # folded into the convs
    sess = _session(path)
    for batch in (1, 3):
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        y = sess.run(None, {"input": x})[0]
        ref = model.forward(x)
        assert y.shape == ref.shape == (batch, 10)
        assert _rel_err(y, ref) < TOL["f32"].rtol, (name, batch)


def test_fixed_batch_and_ops(tmp_path, rng):
    model = eo.nn.Sequential(
        eo.nn.Conv2d(3, 4, 3, padding=1), eo.nn.ReLU6(), eo.nn.MaxPool2d(2),
        eo.nn.Conv2d(4, 4, 3, padding=1), eo.nn.HardSigmoid(), eo.nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        eo.nn.BatchNorm2d(4), eo.nn.Sigmoid(), eo.nn.Flatten(), eo.nn.Linear(4 * 4 * 4, 5))
    _randomize_bn(model, rng).eval()
    path = export_onnx(model, tmp_path / "m.onnx", input_shape=(2, 3, 16, 16), dynamic_batch=False, opset=13)
    proto = onnx.load(path)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    assert proto.opset_import[0].version == 13
    ops = [n.op_type for n in proto.graph.node]
    for op in ("Conv", "Clip", "MaxPool", "HardSigmoid", "AveragePool", "BatchNormalization", "Sigmoid",
               "Flatten", "Gemm"):
        assert op in ops
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    assert _rel_err(_session(path).run(None, {"input": x})[0], model.forward(x)) < TOL["f32"].rtol


def test_metadata_records_input_norm(tmp_path):
    model = eo.models.create("resnet20", width_mult=0.25)
    model.input_norm = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    proto = onnx.load(export_onnx(model, tmp_path / "m.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["edgeopt.scheme"] == "fp32"
    import json
    assert json.loads(props["edgeopt.input_norm"]) == model.input_norm
    # the normalization is recorded, not applied: the first op reads the input directly
    assert proto.graph.node[0].op_type == "Conv" and proto.graph.node[0].input[0] == "input"


# --------------------------------------------------------------------------- int8 (QDQ)

def _quantize(v, scale, zp):
    return np.clip(np.round(v / scale) + np.float32(zp), 0, 255)


def _weight_fq(w, b, x_scale):
    amax = np.abs(w.reshape(len(w), -1)).max(1)
    s = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    if b is not None:  # the int32 bias must fit: |b / (x_scale * s)| <= 2**30
        s = np.maximum(s, (np.abs(b.astype(np.float64)) / (np.float64(x_scale) * 2**30)).astype(np.float32))
    s = s.reshape((-1,) + (1,) * (w.ndim - 1))
    return (np.clip(np.round(w / s), -127, 127) * s).astype(np.float32), s.reshape(-1)


def _qdq_simulation(model, proto, x, input_shape=SHAPE):
    """Run the fused graph in numpy/edgeopt fp32 with quantize -> dequantize at every point the
    exporter documents; activation scales and zero points come from the file's initializers.
    Returns the logits and {point: quantized values}."""
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    g = fuse(trace(model, input_shape))
    key = {g.input: f"t{g.input}"}  # tensor id -> name of its quantization parameters
    points = {}

    def fq(v, k, point=None):
        s, z = init[f"{k}.scale"], np.float32(init[f"{k}.zero_point"])
        points[point or k] = q = _quantize(v, s, z)
        return ((q - z) * s).astype(np.float32)

    vals = {g.input: fq(x, key[g.input])}
    for n in g.nodes:
        a, p, xs = n.attrs, n.params, [vals[i] for i in n.inputs]
        t = f"t{n.output}"
        if n.op in ("conv2d", "linear"):
            b, x_scale = p.get("bias"), init[f"{key[n.inputs[0]]}.scale"]
            w, ws = _weight_fq(p["weight"], b, x_scale)
            if b is not None:
                bs = (x_scale * ws).astype(np.float32)
                b = (np.round(b.astype(np.float64) / bs) * bs).astype(np.float32)
            y = (F.conv2d(xs[0], w, b, a["stride"], a["padding"], a["groups"]) if n.op == "conv2d"
                 else F.linear(xs[0], w, b))
            act, res = a["activation"], a.get("residual")
            if res is not None or act == "hardswish":
                y = fq(y, f"{t}.conv")
            if res is not None:
                y = F.add(y, vals[res])
                if act == "hardswish":
                    y = fq(y, f"{t}.sum")
            if act != "none":
                y = getattr(F, act)(y)
        elif n.op == "channel_scale":
            s = xs[1]
            y = F.channel_scale(xs[0], np.ascontiguousarray(s.reshape(s.shape[0], s.shape[1])))
        elif n.op == "add":
            y = F.add(xs[0], xs[1])
        elif n.op == "global_avgpool2d":
            y = F.global_avg_pool2d(xs[0])
        elif n.op == "flatten":
            y = xs[0].reshape(len(xs[0]), -1)
        elif n.op == "maxpool2d":
            y = F.max_pool2d(xs[0], a["kernel"], a["stride"], a["padding"])
        else:
            y = getattr(F, n.op)(xs[0])
        key[n.output] = key[n.inputs[0]] if n.op in ("maxpool2d", "flatten") else t
        vals[n.output] = fq(y, key[n.output], t)   # the logits too (on the Engine's output grid)
    return vals[g.output], points


def _ort_points(proto, x):
    """onnxruntime (graph as written) with every QuantizeLinear output exposed: {point: values}."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    names = [n.output[0] for n in m.graph.node if n.op_type == "QuantizeLinear"]
    for name in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UINT8, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    outs = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    return {name[:-len(".q")]: o for name, o in zip(names, outs[1:])}


def _check_points(proto, x, sim_points):
    """Every quantized tensor equals the simulation's except for rare rounding-boundary steps: a
    value within float rounding of a .5 boundary rounds one step differently when the sum order
    differs (onnxruntime's fp32 Conv vs edgeopt's); such steps then spread a little downstream."""
    got = _ort_points(proto, x)
    assert set(got) == set(sim_points)
    for k, q in sim_points.items():
        d = np.abs(got[k].astype(np.int32) - q.astype(np.int32))
        assert (d > 0).mean() <= 0.02 and d.max() <= 4, (k, (d > 0).mean(), d.max())
    assert np.array_equal(got["t0"], sim_points["t0"])


@pytest.fixture(scope="module")
def trained():
    """resnet20 (width 0.25) after one short epoch on synthetic 32x32 data: real activation
    ranges, a model whose decisions mean something."""
    eo.manual_seed(0)
    train, test = eo.data.synthetic(num_classes=10, shape=(3, 32, 32), n_train=512, n_test=128, seed=1)
    model = eo.models.create("resnet20", num_classes=10, width_mult=0.25)
    eo.train.fit(model, train, epochs=1, batch_size=64, lr=0.05, progress=False)
    model.eval()
    return model, train, test


def _normalized(model, data):
    from edgeopt.data.preprocess import input_norm, make_loader
    mean, std = input_norm(model, data)
    return np.concatenate([x for x, _ in make_loader(data, 256, False, 0, mean, std)])


def test_int8_qdq_trained_close_to_fp32_and_equals_simulation(tmp_path, trained):
    model, train, test = trained
    path = export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=train)
    proto = onnx.load(path)
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    w_dq = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith(".weight.q")]
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert w_dq and all(init[n.input[0]].dtype == np.int8 and init[n.input[2]].dtype == np.int8 for n in w_dq)
    assert all(a.i == 0 for n in w_dq for a in n.attribute if a.name == "axis")
    x = _normalized(model, test)
    ref = model.forward(x)
    y = _session(path).run(None, {"input": x})[0]
    agree = float((y.argmax(1) == ref.argmax(1)).mean())
    assert agree >= 0.9, agree
    # Twice the int8-full bound: across training seeds this quarter-width model's int8 logits are
    # 1-7 % off its fp32 ones (measured), so the table's 5 % would test the seed, not the export.
    assert _rel_err(y, ref) < 2 * TOL["int8-full"].rtol
    sim, points = _qdq_simulation(model, proto, x)
    _check_points(proto, x, points)
    # onnxruntime running the graph as written (QuantizeLinear, DequantizeLinear, fp32 Conv) and
    # optimized to integer kernels (QLinearConv, QLinearAdd, QGemm)
    _check_simulation(_session(path, optimize=False).run(None, {"input": x})[0], sim)
    # Its integer kernels requantize int32 sums with a float multiplier and round off by one step
    # on many samples: over 8 training seeds 41-98 % of samples were exact and the largest miss
    # 0.3-3.4 % of the logit range (measured), so only closeness is asked of them; the graph as
    # written (above) matches the simulation on every sample of every seed.
    _check_simulation(y, sim, exact_fraction=0.0, max_miss=0.05)


def _check_simulation(y, sim, exact_fraction=0.9, max_miss=0.02):
    """y equals the QDQ simulation within 1e-4 (of the logit range) on most samples and is close
    on all. Not on all: a value within float rounding of a .5 quantization boundary can round one
    step differently when the sum order differs (onnxruntime's fp32 Conv vs edgeopt's, or its
    int32 accumulators requantized with a float multiplier), and one step in a pooled feature
    moves the logits by up to ~1 % of their range. A wrong formula (scale, zero point, rounding,
    placement) would miss on every sample."""
    per_sample = np.abs(y - sim).max(1) / np.abs(sim).max()
    assert (per_sample < 1e-4).mean() >= exact_fraction, np.sort(per_sample)[::-1][:10]
    assert per_sample.max() < max_miss
    assert (y.argmax(1) == sim.argmax(1)).mean() >= 0.9


def test_int8_runs_on_integer_kernels(tmp_path, trained):
    model, train, _ = trained
    path = export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=train)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    convs = [n.op_type for n in onnx.load(path).graph.node].count("Conv")  # 19 3x3 + 2 shortcuts
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QLinearConv") == convs == 21 and "Conv" not in ops
    assert "QLinearAdd" in ops and "QGemm" in ops


def test_int8_calibration_ranges_and_input_norm(tmp_path, trained):
    """The input point's parameters come from min/max of the first 256 normalized calib samples."""
    model, train, _ = trained
    proto = onnx.load(export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=train.x[:300]))
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    x = _normalized(model, train.subset(np.arange(256)))
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = np.float32((hi - lo) / 255)
    assert init["t0.scale"] == pytest.approx(scale, rel=1e-6)
    assert int(init["t0.zero_point"]) == int(np.round(-lo / scale))
    assert init["t0.zero_point"].dtype == np.uint8


@pytest.mark.parametrize("name,width", [("mobilenet_v2", 0.25), ("mobilenet_v3_small", 0.25), ("vgg11", 0.125)])
def test_int8_qdq_zoo_equals_simulation(tmp_path, rng, name, width):
    model = _randomize_bn(eo.models.create(name, num_classes=10, width_mult=width), rng)
    model.eval()
    calib = rng.integers(0, 256, (64, 3, 32, 32)).astype(np.uint8)
    path = export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=calib)
    proto = onnx.load(path)
    x = rng.uniform(0, 1, (32, 3, 32, 32)).astype(np.float32)
    sim, points = _qdq_simulation(model, proto, x)
    _check_points(proto, x, points)
    # deeper random-init networks with random BN statistics take more boundary steps per sample
    # (mobilenet_v2: 72 % of the samples within 1e-4 with integer kernels, all within 0.5 %)
    _check_simulation(_session(path, optimize=False).run(None, {"input": x})[0], sim, 0.6)
    _check_simulation(_session(path).run(None, {"input": x})[0], sim, 0.6)


def test_int8_maxpool_flatten_share_input_params(tmp_path, rng):
    """MaxPool and Flatten re-quantize with their input's parameters (exact), and the next
    layer's int32 bias is scaled with those parameters, not with the pool output's own range."""
    m = eo.nn.Sequential(eo.nn.Conv2d(3, 4, 3, padding=1), eo.nn.MaxPool2d(2), eo.nn.Conv2d(4, 4, 3, padding=1),
                         eo.nn.MaxPool2d(2), eo.nn.Flatten(), eo.nn.Linear(4 * 4 * 4, 3)).eval()
    calib = rng.integers(0, 256, (64, 3, 16, 16)).astype(np.uint8)
    path = export_onnx(m, tmp_path / "q.onnx", scheme="int8", calib=calib, input_shape=(1, 3, 16, 16))
    proto = onnx.load(path)
    by_output = {n.output[0]: n for n in proto.graph.node}
    for n in proto.graph.node:
        if n.op_type in ("MaxPool", "Flatten"):
            q = next(c for c in proto.graph.node if c.op_type == "QuantizeLinear" and c.input[0] == n.output[0])
            src = by_output[n.input[0]]  # the DequantizeLinear feeding the pool
            assert src.op_type == "DequantizeLinear" and q.input[1:] == src.input[1:]
    x = rng.uniform(0, 1, (16, 3, 16, 16)).astype(np.float32)
    sim, points = _qdq_simulation(m, proto, x, input_shape=(1, 3, 16, 16))
    _check_points(proto, x, points)
    _check_simulation(_session(path).run(None, {"input": x})[0], sim)


def test_int8_tiny_and_zero_activation_ranges(tmp_path, rng):
    """Untrained networks can carry their signal in activations of ~1e-9 (no scale floor may
    flush them), and a tensor that is 0 everywhere still needs a valid (positive) scale."""
    def model(first_scale):
        m = eo.nn.Sequential(eo.nn.Conv2d(3, 8, 3, padding=1, bias=False), eo.nn.ReLU(),
                             eo.nn.Conv2d(8, 8, 3, padding=1), eo.nn.ReLU(), eo.nn.GlobalAvgPool2d(),
                             eo.nn.Flatten(), eo.nn.Linear(8, 4))
        m[0].weight.data[...] *= first_scale
        m[2].bias.data[...] = 0.0
        return m.eval()
    calib = rng.integers(0, 256, (64, 3, 16, 16)).astype(np.uint8)
    x = rng.uniform(0, 1, (8, 3, 16, 16)).astype(np.float32)
    for first_scale in (1e-9, 0.0):
        m = model(first_scale)
        path = export_onnx(m, tmp_path / "q.onnx", scheme="int8", calib=calib, input_shape=(1, 3, 16, 16))
        scales = [numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer if i.name.endswith(".scale")]
        assert all(np.all(np.isfinite(v)) and np.all(v > 0) for v in scales)
        ref = m.forward(x)
        assert _rel_err(_session(path).run(None, {"input": x})[0], ref) < TOL["int8-full"].rtol, first_scale


# --------------------------------------------------------------------------- files and errors

def test_atomic_write_keeps_existing_file(tmp_path, monkeypatch):
    model = eo.models.create("resnet20", width_mult=0.25)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous contents")

    def boom(fd):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="simulated"):
        export_onnx(model, target)
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["m.onnx"]  # no temp file left behind
    monkeypatch.undo()
    assert export_onnx(model, target) == str(target)
    assert os.listdir(tmp_path) == ["m.onnx"]
    onnx.checker.check_model(onnx.load(str(target)))


def test_bad_input(tmp_path):
    model = eo.models.create("resnet20", width_mult=0.25)
    with pytest.raises(ValueError, match="scheme"):
        export_onnx(model, tmp_path / "m.onnx", scheme="int4")
    with pytest.raises(ValueError, match="fp16"):
        export_onnx(model, tmp_path / "m.onnx", scheme="fp16")
    with pytest.raises(ValueError, match="calib"):
        export_onnx(model, tmp_path / "m.onnx", scheme="int8")
    with pytest.raises(ValueError, match="calib"):
        export_onnx(model, tmp_path / "m.onnx", scheme="int8", calib=np.zeros((4, 3, 28, 28), np.uint8))
    with pytest.raises(TypeError, match="calib"):
        export_onnx(model, tmp_path / "m.onnx", scheme="int8", calib=[1, 2, 3])
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", opset=9)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(eo.models.create("mobilenet_v3_small", width_mult=0.25), tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="input_shape"):
        export_onnx(model, tmp_path / "m.onnx", input_shape=(3, 32, 32))
    with pytest.raises(TypeError, match="model"):
        export_onnx("resnet20", tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="path"):
        export_onnx(model, 42)
    with pytest.raises(FileNotFoundError, match="path"):
        export_onnx(model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(TypeError, match="dynamic_batch"):
        export_onnx(model, tmp_path / "m.onnx", dynamic_batch="yes")
    # a layer without an inference operator (resnet's parameter-free option-A shortcut)
    with pytest.raises(NotImplementedError, match="ZeroPadShortcut"):
        export_onnx(eo.models.create("resnet20", width_mult=0.25, shortcut="A"), tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_missing_onnx_is_a_clear_import_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match="pip install onnx"):
        export_onnx(eo.models.create("resnet20", width_mult=0.25), tmp_path / "m.onnx")


def test_int8_observer_choice_and_learned_scales(tmp_path, trained):
    """observer= picks the calibrated ranges as in deploy.compile; a model converted after
    quantization-aware training exports the scales it learned (no calib), the Engine's."""
    model, train, test = trained
    x = _normalized(model, test)
    init = {}
    for obs in ("minmax", "percentile"):
        proto = onnx.load(export_onnx(model, tmp_path / f"{obs}.onnx", scheme="int8", calib=train, observer=obs))
        init[obs] = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    scales = [k for k, v in init["minmax"].items() if k.endswith(".scale") and np.ndim(v) == 0]
    assert all(init["percentile"][k] <= init["minmax"][k] * (1 + 1e-6) for k in scales)
    assert any(init["percentile"][k] < init["minmax"][k] for k in scales)
    with pytest.raises(ValueError, match="observer"):
        export_onnx(model, tmp_path / "bad.onnx", scheme="int8", calib=train, observer="best")
    qat = copy.deepcopy(model)
    qat.train()
    eo.quant.prepare_qat(qat, (1, 3, 32, 32))
    eo.train.fit(qat, train, epochs=1, batch_size=64, lr=0.005, progress=False,
                 callbacks=[eo.quant.FreezeBatchNorm(4), eo.quant.FreezeObservers(6)])
    eo.quant.convert(qat)
    path = export_onnx(qat, tmp_path / "qat.onnx", scheme="int8")
    got = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    fqs = [q for q in qat.modules() if isinstance(q, eo.quant.FakeQuantize)]
    learned = {q.qparams() for q in fqs}   # the logits' too: the Engine requantizes them
    pairs = {(float(got[k]), int(got[k[:-len("scale")] + "zero_point"])) for k in got if k.endswith(".scale")
             and np.ndim(got[k]) == 0 and k[:-len("scale")] + "zero_point" in got}
    assert pairs == {(float(np.float32(s)), z) for s, z in learned}
    engine = eo.deploy.compile(qat, "int8-full")
    y = _session(path).run(None, {"input": x})[0]
    assert (y.argmax(1) == engine.run(x).argmax(1)).mean() >= 0.95


# --------------------------------------------------------------------------- int8: onnxruntime against the Engine
#
# One LSB of the logits is the int8-full Engine's output scale S_out: the Engine requantizes the
# last layer's int32 accumulator to u8 (S_out, Z_out) and dequantizes that, and the export puts a
# QuantizeLinear -> DequantizeLinear with the same (S_out, Z_out) on "logits". Both outputs are
# then (q - Z_out) * S_out, so (onnxruntime - Engine) / S_out is a whole number of steps.
#
# Both compute the same integer arithmetic: the Engine requantizes in float32 with the factors,
# rounding and fused-multiply-add order of onnxruntime's QLinearConv / QGemm / QLinearAdd /
# QLinearMul / QLinearGlobalAveragePool / QuantizeLinear (cpp/src/qs8-gemm/requantize.h), with the
# weights and biases of the export (quant.quantize_weight_bias), so with its default
# graph optimizations (the QDQ pairs fused into those integer operators) onnxruntime returns the
# Engine's logits exactly. Without them it runs the QDQ graph as written, each op in float32 on
# dequantized inputs: float rounding then moves values near a rounding boundary by one step and
# the depthwise layers of the mobilenets amplify such steps (measured on the fixtures below:
# mobilenet_v2 98.0 % and mobilenet_v3_small 97.3 % of the logits within one step, resnet20
# 100 %); that comparison keeps looser bounds.

def _lsb_fixture(name, width, n_train, batch_size):
    eo.manual_seed(0)
    train, test = eo.data.synthetic(num_classes=10, shape=(3, 32, 32), n_train=n_train, n_test=256, seed=1)
    model = eo.models.create(name, num_classes=10, width_mult=width)
    eo.train.fit(model, train, epochs=1, batch_size=batch_size, lr=0.05, progress=False)
    model.eval()
    return model, train, _normalized(model, test)    # 256 test images: 2560 logits


@pytest.fixture(scope="module")
def lsb_resnet20():
    """resnet20 (width 0.25) after 128 steps on synthetic data (82 % test accuracy)."""
    model, train, x = _lsb_fixture("resnet20", 0.25, 2048, 16)
    return model, train.subset(np.arange(64)), x, train


@pytest.fixture(scope="module")
def lsb_resnet20_qat(lsb_resnet20):
    """The same resnet20 fine-tuned with quantization-aware training and converted: its Engine and
    its export use the learned scales (no calibration data)."""
    model, _, x, train = lsb_resnet20
    qat = copy.deepcopy(model)
    qat.train()
    eo.quant.prepare_qat(qat, (1, 3, 32, 32))
    eo.train.fit(qat, train.subset(np.arange(512)), epochs=1, batch_size=64, lr=0.005, progress=False,
                 callbacks=[eo.quant.FreezeBatchNorm(4), eo.quant.FreezeObservers(6)])
    eo.quant.convert(qat)
    qat.eval()
    return qat, None, x, train


@pytest.fixture(scope="module")
def lsb_mobilenet_v2():
    """mobilenet_v2 (width 0.25) after 96 steps on synthetic data (83 % test accuracy)."""
    model, train, x = _lsb_fixture("mobilenet_v2", 0.25, 1536, 16)
    return model, train.subset(np.arange(64)), x, train


@pytest.fixture(scope="module")
def lsb_mobilenet_v3_small():
    """mobilenet_v3_small (width 0.25: hard-swish tables, squeeze-excitation) after 96 steps."""
    model, train, x = _lsb_fixture("mobilenet_v3_small", 0.25, 1536, 16)
    return model, train.subset(np.arange(64)), x, train


def _logit_steps(proto, engine_logits, x, optimize=True):
    """(onnxruntime logits - Engine logits) / S_out rounded to whole steps, with S_out the scale of
    the DequantizeLinear that writes "logits"; and the largest distance (in steps) of either side
    from that grid (0 up to float rounding when both are on it)."""
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    dq = next(n for n in proto.graph.node if n.output[0] == "logits")
    assert dq.op_type == "DequantizeLinear"
    s = np.float64(init[dq.input[1]])
    y = _session(proto.SerializeToString(), optimize).run(None, {"input": x})[0]
    a, b = y.astype(np.float64) / s, engine_logits.astype(np.float64) / s
    off = max(np.abs(a - np.rint(a)).max(), np.abs(b - np.rint(b)).max())
    return np.rint(a - b), float(off)


def _with_scale(proto, name, factor):
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    i = next(i for i in m.graph.initializer if i.name == name)
    i.CopyFrom(numpy_helper.from_array(np.float32(numpy_helper.to_array(i) * factor), name))
    return m


@pytest.mark.parametrize("case,float_bound", [
    ("lsb_resnet20", 0.999), ("lsb_resnet20_qat", 0.999), ("lsb_mobilenet_v2", 0.95),
    ("lsb_mobilenet_v3_small", 0.95)])
def test_int8_onnxruntime_equals_engine(tmp_path, request, case, float_bound):
    """The QDQ export carries the int8-full Engine's scales and zero points (every activation point
    and the logits); onnxruntime with its default graph optimizations (integer kernels) gives the
    Engine's logits bit for bit, and without any (QuantizeLinear / float op / DequantizeLinear as
    written) logits on the Engine's output grid within one step on >= `float_bound` of 2560."""
    model, calib, x, _ = request.getfixturevalue(case)
    engine = eo.deploy.compile(model, "int8-full", calib=calib)
    proto = onnx.load(export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=calib))
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    want = {(f"t{p[0]}.{p[1]}" if isinstance(p, tuple) else f"t{p}"): (np.float32(s), z)
            for p, (s, z) in quantize_graph(model, calib, (1, 3, 32, 32)).points.items()}
    got = {k[:-len(".scale")]: (init[k], int(init[k[:-len("scale")] + "zero_point"])) for k in init
           if k.endswith(".scale") and np.ndim(init[k]) == 0 and not k.endswith((".weight.scale", ".bias.scale"))}
    assert got and all(want[k] == v for k, v in got.items()), [(k, v, want.get(k)) for k, v in got.items()]
    dq = next(n for n in proto.graph.node if n.output[0] == "logits")
    assert dq.input[1][:-len(".scale")] in got   # the logits are quantized, with the Engine's scale
    y = engine.run(x)
    assert y.size >= 2000 and len(np.unique(y)) > 20   # logits that vary: a comparison that can fail
    np.testing.assert_array_equal(_session(proto.SerializeToString()).run(None, {"input": x})[0], y)
    steps, off = _logit_steps(proto, y, x, optimize=False)
    assert off < 1e-3, off
    within = float((np.abs(steps) <= 1).mean())
    assert within >= float_bound, (case, within, np.abs(steps).max())


def test_int8_logit_step_check_catches_a_wrong_scale(tmp_path, lsb_resnet20):
    """The comparison above can fail: the input's scale 0.2 % off moves 1.6 % of this model's
    logits by more than one step (measured), and a logits scale 0.1 % off leaves the Engine's grid.
    (A one-step comparison of the logits is blind to most single scales deeper in: a 5 % error in
    the scale of any activation in the second half of resnet20 moved at most 0.12 % of them; the
    scale-by-scale equality above covers those.)"""
    model, calib, x, _ = lsb_resnet20
    y = eo.deploy.compile(model, "int8-full", calib=calib).run(x)
    proto = onnx.load(export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=calib))
    steps, _ = _logit_steps(_with_scale(proto, "t0.scale", 1.002), y, x)
    assert (np.abs(steps) <= 1).mean() < 0.999
    out_scale = next(n for n in proto.graph.node if n.output[0] == "logits").input[1]
    _, off = _logit_steps(_with_scale(proto, out_scale, 1.001), y, x)
    assert off > 0.02


def test_int8_export_with_the_auto_observer_carries_the_auto_engine_s_scales(tmp_path, lsb_resnet20):
    model, calib, x, _ = lsb_resnet20
    engine = eo.deploy.compile(model, "int8-full", calib=calib, observer="auto")
    proto = onnx.load(export_onnx(model, tmp_path / "q.onnx", scheme="int8", calib=calib, observer="auto"))
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    auto = quantize_graph(model, calib, (1, 3, 32, 32), observer="auto").points
    minmax = quantize_graph(model, calib, (1, 3, 32, 32)).points
    assert auto != minmax   # the auto search moved some ranges, so the check below tells them apart
    for p, (s, z) in auto.items():
        k = f"t{p[0]}.{p[1]}" if isinstance(p, tuple) else f"t{p}"
        if k + ".scale" in init:
            assert (init[k + ".scale"], int(init[k + ".zero_point"])) == (np.float32(s), z), k
    steps, _ = _logit_steps(proto, engine.run(x), x)
    assert (np.abs(steps) <= 1).mean() >= 0.999


# --------------------------------------------------------------------------- int8: operator by operator
# The model-level equality above rests on each integer operator computing onnxruntime's bytes;
# these check the ones whose constants edgeopt computes itself, on inputs a model would rarely
# reach (every pair of bytes, many scales), one node at a time.

def _one_node_session(node, inputs, outputs, inits):
    from onnx import TensorProto, helper
    graph = helper.make_graph([node], "one", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return _session(model.SerializeToString(), optimize=False)


def test_int8_add_equals_onnxruntime_qlinearadd_on_every_byte_pair():
    from onnx import TensorProto, helper
    rng = np.random.default_rng(3)
    a, b = (g.ravel().astype(np.uint8) for g in np.meshgrid(np.arange(256), np.arange(256)))
    names = ["a_s", "a_z", "b_s", "b_z", "y_s", "y_z"]
    node = helper.make_node("QLinearAdd", ["a", "a_s", "a_z", "b", "b_s", "b_z", "y_s", "y_z"], ["y"],
                            domain="com.microsoft")
    io = [helper.make_tensor_value_info(n, TensorProto.UINT8, [a.size]) for n in ("a", "b")]
    out = [helper.make_tensor_value_info("y", TensorProto.UINT8, [a.size])]
    differ = 0
    for _ in range(40):
        s_a, s_b, s_y = (float(np.float32(v)) for v in rng.uniform(0.005, 0.1, 3))
        z_a, z_b, z_y = (int(v) for v in rng.integers(0, 256, 3))
        vals = [s_a, z_a, s_b, z_b, s_y, z_y]
        inits = [helper.make_tensor(n, TensorProto.FLOAT if n.endswith("_s") else TensorProto.UINT8, [], [v])
                 for n, v in zip(names, vals)]
        want = _one_node_session(node, io, out, inits).run(None, {"a": a, "b": b})[0]
        r_a, r_b, off = eo.quant.add_scales(s_a, z_a, s_b, z_b, s_y, z_y)
        got = eo._core.testing.qs8_add(a, b, {"a_scale": float(r_a), "b_scale": float(r_b),
                                              "offset": float(off), "qmin": 0, "qmax": 255})
        np.testing.assert_array_equal(got, want)
        differ += int(np.any(np.float32(z_y) - (r_a * np.float32(z_a) + r_b * np.float32(z_b)) != off))
    assert differ > 0   # some of these offsets need the fused form (measured: about a quarter)


def test_int8_channel_scale_equals_onnxruntime_qlinearmul_on_every_byte_pair():
    """Squeeze-excitation's x * s: onnxruntime's QLinearMul rounds the product times
    s_x * s_s / s_y to float32, adds the output zero point in float32, then rounds half to even;
    the Engine does the same (requantize.h). Every (x, s) byte pair, the per-channel scale
    broadcast over pixels as the SE block uses it; the scale sets of the mobilenet_v3_small
    fixture's first SE block (hard-sigmoid output scale 1/255: many products land on a half) and
    30 random ones."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(5)
    x = np.tile(np.arange(256, dtype=np.uint8), (256, 1))[None, :, :, None]   # (1, C=256, 256, 1) NCHW
    s = np.arange(256, dtype=np.uint8).reshape(1, 256, 1, 1)                   # channel c scales by byte c
    names = ["x_s", "x_z", "s_s", "s_z", "y_s", "y_z"]
    node = helper.make_node("QLinearMul", ["x", "x_s", "x_z", "s", "s_s", "s_z", "y_s", "y_z"], ["y"],
                            domain="com.microsoft")
    io = [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape)),
          helper.make_tensor_value_info("s", TensorProto.UINT8, list(s.shape))]
    out = [helper.make_tensor_value_info("y", TensorProto.UINT8, list(x.shape))]
    sets = [(0.030818861, 0, 0.003921569, 0, 0.021275064, 17)]
    sets += [tuple(float(np.float32(v)) for v in rng.uniform(0.002, 0.1, 3)) for _ in range(30)]
    sets = [t if len(t) == 6 else (t[0], int(rng.integers(256)), t[1], int(rng.integers(256)), t[2],
                                   int(rng.integers(256))) for t in sets]
    differ = 0
    for s_x, z_x, s_s, z_s, s_y, z_y in sets:
        inits = [helper.make_tensor(n, TensorProto.FLOAT if n.endswith("_s") else TensorProto.UINT8, [], [v])
                 for n, v in zip(names, [s_x, z_x, s_s, z_s, s_y, z_y])]
        want = _one_node_session(node, io, out, inits).run(None, {"x": x, "s": s})[0][0, :, :, 0]   # [c, x]
        m = float(eo.quant.requant_scale(s_x, s_s, s_y))
        p = dict(x_zp=z_x, scale=m, y_zp=z_y, qmin=0, qmax=255)
        got = eo._core.testing.qs8_channel_scale(x[0, :, :, 0].T[None, :, None, :].copy(), s[:, :, 0, 0], z_s, p)
        np.testing.assert_array_equal(got[0, :, 0, :].T, want)
        prod = (np.arange(256)[None, :] - z_x) * (np.arange(256)[:, None] - z_s)
        v = prod.astype(np.float32) * np.float32(m)
        differ += int(np.sum(np.clip(np.rint(v) + z_y, 0, 255) != np.clip(np.rint(v + np.float32(z_y)), 0, 255)))
    assert differ > 0   # outputs where adding the zero point after rounding would give another byte


def test_int8_quantize_and_global_average_pool_equal_onnxruntime():
    from onnx import TensorProto, helper
    rng = np.random.default_rng(4)
    # QuantizeLinear: x / s rounded half to even, on values at and next to ties
    s, z = np.float32(0.0371), 117
    k = rng.integers(-200, 200, 4096).astype(np.float32)
    x = np.concatenate([(k + np.float32(0.5)) * s, np.nextafter((k + np.float32(0.5)) * s, np.float32(np.inf)),
                        rng.normal(0, 3, 4096).astype(np.float32)]).astype(np.float32)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])
    sess = _one_node_session(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
                             [helper.make_tensor_value_info("q", TensorProto.UINT8, [x.size])],
                             [helper.make_tensor("s", TensorProto.FLOAT, [], [float(s)]),
                              helper.make_tensor("z", TensorProto.UINT8, [], [z])])
    want = sess.run(None, {"x": x})[0]
    got = eo._core.testing.qs8_quantize(x.reshape(1, 1, 1, -1), float(s), z).ravel()
    np.testing.assert_array_equal(got, want)
    # QLinearGlobalAveragePool (NCHW there, NHWC here): integer sum, factor s_in / (s_out * HW)
    for hw, s_in, s_out in ((16, 0.02, 0.011), (49, 0.05, 0.0123), (4, 0.1, 0.09)):
        q = rng.integers(0, 256, (2, 24, hw)).astype(np.uint8)
        z_in, z_out = 13, 140
        node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                                domain="com.microsoft", channels_last=0)
        sess = _one_node_session(node, [helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 24, hw, 1])],
                                 [helper.make_tensor_value_info("y", TensorProto.UINT8, [2, 24, 1, 1])],
                                 [helper.make_tensor("xs", TensorProto.FLOAT, [], [s_in]),
                                  helper.make_tensor("xz", TensorProto.UINT8, [], [z_in]),
                                  helper.make_tensor("ys", TensorProto.FLOAT, [], [s_out]),
                                  helper.make_tensor("yz", TensorProto.UINT8, [], [z_out])])
        want = sess.run(None, {"x": q[..., None]})[0].reshape(2, 24)
        m = float(eo.quant.average_scale(s_in, s_out, hw))
        got = eo._core.testing.qs8_global_avgpool2d(q.transpose(0, 2, 1)[:, :, None, :].copy(), z_in, m, z_out)
        np.testing.assert_array_equal(got.reshape(2, 24), want)

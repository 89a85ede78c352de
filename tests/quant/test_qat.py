"""Quantization-aware training: the fake-quantization kernels against numpy, the straight-through
gradient, the folded weight quantizer, where prepare_qat puts fake quantizers (exactly the int8
lowering's points), the freeze callbacks, and the end-to-end promise: a converted QAT model and
its int8-full Engine (compiled from the learned scales, no calibration) compute the same thing."""
from collections import OrderedDict

import copy

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import nn, quant
from edgeopt.deploy.lower.int8_full import quantize_graph, quantize_points
from edgeopt.graph import fold_batchnorm, trace


def _fq_ref(x, s, z, qmin, qmax):
    """The formula in numpy float32: x times float32(1 / s), rounded half to even."""
    s = np.float32(s)
    t = np.clip(np.round(x * (np.float32(1) / s)) + np.float32(z), qmin, qmax)
    return ((t - np.float32(z)) * s).astype(np.float32)


def test_fake_quantize_matches_numpy_per_tensor_and_per_channel():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 3, 33, 17)) * 3).astype(np.float32)
    x.flat[:4] = [0.5 * 0.05, 1.5 * 0.05, -2.5 * 0.05, 1e6]   # ties (half to even) and saturation
    y = quant.fake_quantize(x, 0.05, 100, 0, 255)
    np.testing.assert_array_equal(y, _fq_ref(x, 0.05, 100, 0, 255))
    s = np.array([0.01, 0.1, 0.02, 0.5], np.float32)
    y = quant.fake_quantize(x, s, 0, -127, 127, axis=0)
    for c in range(4):
        np.testing.assert_array_equal(y[c], _fq_ref(x[c], s[c], 0, -127, 127))


def test_fake_quantize_bad_input():
    x = np.ones((2, 3), np.float32)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"act contains NaN at index \(1, 2\)"):
        quant.fake_quantize(x, 0.1, 0, name="act")
    with pytest.raises(ValueError, match="scale"):
        quant.fake_quantize(np.ones(3, np.float32), 0.0)
    with pytest.raises(ValueError, match="axis"):
        quant.fake_quantize(np.ones((2, 3), np.float32), 0.1, axis=1)


def test_straight_through_gradient_is_zero_outside_the_range():
    fq = quant.FakeQuantize()
    fq.train()
    x = np.linspace(-2, 6, 801, dtype=np.float32).reshape(1, 1, 1, -1)
    fq(np.array([[[[0.0, 4.0]]]], np.float32))        # observed range [0, 4]
    fq.observer_enabled = False
    s, z = fq.qparams()
    y = fq(x)
    np.testing.assert_array_equal(y, _fq_ref(x, s, z, 0, 255))
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    dx = fq.backward(dy)
    t = x * (np.float32(1) / np.float32(s)) + z
    inside = (t >= -0.5) & (t <= 255.5)
    np.testing.assert_array_equal(dx, np.where(inside, dy, 0))
    assert inside.any() and (~inside).any()


def test_folded_weight_quantizer_is_on_the_folded_grid():
    conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
    rng = np.random.default_rng(2)
    bn.weight.data[:] = [0.5, -2.0, 1.0, 3.0]
    bn.running_var[:] = [0.3, 2.0, 1.0, 0.01]
    p = quant.FakeQuantWeight(8, bn)
    w = rng.standard_normal(conv.weight.shape).astype(np.float32)
    wq = p.forward(w)
    f = bn.weight.data / np.sqrt(bn.running_var + bn.eps)
    folded = wq * f[:, None, None, None]
    s = np.abs(w * f[:, None, None, None]).reshape(4, -1).max(1) / 127
    k = folded / s[:, None, None, None]
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)     # integers: what int8 lowering stores
    assert np.abs(np.round(k)).max() == 127
    dw = rng.standard_normal(w.shape).astype(np.float32)
    assert p.backward(dw) is dw


def _tiny():
    eo.manual_seed(3)
    return eo.models.create("resnet20", num_classes=10, in_channels=1, width_mult=0.25)


def test_prepare_qat_puts_fake_quantizers_at_the_lowering_points():
    m = _tiny()
    shape = (1, 1, 16, 16)
    points = quantize_points(fold_batchnorm(trace(m, shape)))
    quant.prepare_qat(m, shape)
    fqs = [x for x in m.modules() if isinstance(x, quant.FakeQuantize)]
    assert len(fqs) == len(points)
    assert isinstance(list(m._modules.values())[0], quant.FakeQuantize)   # the input
    convs = [x for x in m.modules() if isinstance(x, (nn.Conv2d, nn.Linear))]
    assert all(nn.parametrize.is_parametrized(c, "weight") for c in convs)
    with pytest.raises(ValueError, match="already prepared"):
        quant.prepare_qat(m, shape)
    with pytest.raises(ValueError, match="never observed"):
        quant.convert(m)
    with pytest.raises(ValueError, match="not prepared"):
        quant.convert(_tiny())


def test_frozen_batchnorm_uses_and_keeps_running_statistics():
    bn = nn.BatchNorm2d(3)
    bn.running_mean[:] = [0.1, -0.2, 0.3]
    bn.running_var[:] = [2.0, 0.5, 1.0]
    bn.stats_frozen = True
    bn.train()
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 4)).astype(np.float32)
    y = bn(x)
    assert bn.running_mean.tolist() == pytest.approx([0.1, -0.2, 0.3])
    bn.eval()
    np.testing.assert_array_equal(y, bn(x))


def _pretrained_tiny(seed):
    """(model, input shape, rng, dataset): _tiny after one epoch on 128 random 16x16 images."""
    m = _tiny()
    shape = (1, 1, 16, 16)
    rng = np.random.default_rng(seed)
    ds = eo.data.Dataset((rng.random((128,) + shape[1:]) * 255).astype(np.uint8), rng.integers(0, 10, 128))
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.05, progress=False)
    return m, shape, rng, ds


def _qat_run(m, shape, steps_before_freeze=6):
    rng = np.random.default_rng(5)
    ds = eo.data.Dataset((rng.random((192,) + shape[1:]) * 255).astype(np.uint8), rng.integers(0, 10, 192))
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.05, progress=False)
    quant.prepare_qat(m, shape)
    freeze_obs, freeze_bn = quant.FreezeObservers(steps_before_freeze), quant.FreezeBatchNorm(steps_before_freeze - 2)
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.005, progress=False, callbacks=[freeze_bn, freeze_obs])
    return ds


def test_freeze_callbacks_stop_observers_and_statistics():
    m = _tiny()
    shape = (1, 1, 16, 16)
    _qat_run(m, shape, steps_before_freeze=6)   # 6 steps in the epoch: frozen at the end
    scales = [f.scale.copy() for f in m.modules() if isinstance(f, quant.FakeQuantize)]
    bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    stats = [b.running_mean.copy() for b in bns]
    rng = np.random.default_rng(6)
    ds = eo.data.Dataset((rng.random((64,) + shape[1:]) * 255).astype(np.uint8), rng.integers(0, 10, 64))
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.005, progress=False,
                 callbacks=[quant.FreezeObservers(0), quant.FreezeBatchNorm(0)])
    assert all(np.array_equal(a, f.scale) for a, f in zip(scales, [f for f in m.modules() if isinstance(f, quant.FakeQuantize)]))
    assert all(np.array_equal(a, b.running_mean) for a, b in zip(stats, bns))


def test_converted_qat_model_and_its_engine_agree():
    m = _tiny()
    shape = (1, 1, 16, 16)
    ds = _qat_run(m, shape)
    quant.convert(m)
    assert not any(nn.parametrize.is_parametrized(c, "weight") for c in m.modules()
                   if isinstance(c, (nn.Conv2d, nn.Linear)))
    engine = eo.deploy.compile(m, "int8-full", input_shape=shape)   # no calib: the learned scales
    assert engine.metadata["int8_full"]["observer"] == "learned (QAT)"
    mean, std = m.input_norm["mean"], m.input_norm["std"]
    x = ((ds.x[:96].astype(np.float32) / 255 - np.float32(mean[0])) / np.float32(std[0])).astype(np.float32)
    m.eval()
    a, b = m(x), engine.run(x)
    out_scale = [f for f in m.modules() if isinstance(f, quant.FakeQuantize)][-1].qparams()[0]
    # both round the same tensors with the same scales; they differ where the Engine's exact
    # integer accumulator, requantized once, rounds a value the other way than the fake-quant
    # model's float arithmetic, and that propagates (in this 4-channel model by a few output steps)
    steps = np.abs(a - b) / out_scale
    assert steps.mean() <= 1.5 and steps.max() <= 10
    # On random images this model's logits differ by up to ~9 steps, so some predictions flip, at
    # top-2 margins of up to 7 steps: with _tiny()'s eo.manual_seed(k), k = 0-11, agreement ran
    # 0.917-0.990 (measured; it moves with the float training trajectory, e.g. a conv's summation order)
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.9
    # every point the lowering quantizes has a learned scale, and the Engine's tensors carry them
    g0 = fold_batchnorm(trace(m, shape))
    assert set(quantize_points(g0)) <= set(g0.qparams)
    qg = quantize_graph(m, None, shape)
    used = {(t.scale, t.zero_point) for t in qg.tensors.values() if t.dtype == "u8"}
    assert used <= set(g0.qparams.values())
    with pytest.raises(ValueError, match="calib"):
        eo.deploy.compile(_tiny(), "int8-full", input_shape=shape)


def test_int4_full_qat_model_and_its_engine_agree():
    """prepare_qat(weight_bits=4) with activations trains for int4-full: 4-bit weights in
    quant.low_bit_layers (not the first, the last or depthwise layers), 8-bit elsewhere, and the
    converted model's int4-full Engine (learned scales, no calibration) computes what it does."""
    m, shape, rng, ds = _pretrained_tiny(9)
    g = fold_batchnorm(trace(m, shape))
    four = quant.low_bit_layers(g)
    layers = [n.name.split("+")[0] for n in g.nodes if n.op in ("conv2d", "linear")]
    assert four == set(layers[1:-1]) and len(four) == 20   # resnet20: 22 conv / linear, no depthwise
    quant.prepare_qat(m, shape, weight_bits=4)
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.005, progress=False,
                 callbacks=[quant.FreezeBatchNorm(2), quant.FreezeObservers(3)])
    quant.convert(m)
    e = eo.deploy.compile(m, "int4-full", input_shape=shape)
    assert e.metadata["int8_full"]["weight_bits"] == 4
    w4 = [r["name"].split("+")[0] for r in e.summary() if r["op"] == "qs8_conv2d" and " w4" in r["info"]]
    assert set(w4) == four
    # the converted weights are on the 4-bit grid where the Engine stores 4 bits, 8-bit elsewhere
    g = fold_batchnorm(trace(m, shape))
    for n in g.nodes:
        if n.op in ("conv2d", "linear"):
            w = n.params["weight"].astype(np.float64).reshape(len(n.params["weight"]), -1)
            qmax = 7 if n.name.split("+")[0] in four else 127
            k = w / (np.abs(w).max(1, keepdims=True) / qmax)
            assert np.abs(k - np.round(k)).max() < 1e-3, n.name
    x = rng.standard_normal((96,) + shape[1:]).astype(np.float32)
    m.eval()
    a, b = m(x), e.run(x)
    out_scale = [f for f in m.modules() if isinstance(f, quant.FakeQuantize)][-1].qparams()[0]
    steps = np.abs(a - b) / out_scale   # as for int8-full: integer vs float accumulation only
    assert steps.mean() <= 1.5 and steps.max() <= 10
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.95
    with pytest.raises(ValueError, match="activations=False"):
        quant.prepare_qat(_tiny(), shape, weight_bits=2)


@pytest.mark.parametrize("bits,scheme", [(4, "int4-weight"), (2, "int2-weight")])
def test_weight_only_low_bit_qat_deploys_exactly(bits, scheme):
    """Weight-only QAT at 4 / 2 bits: the converted weights (BN folded) are on the grid the
    int{4,2}-weight scheme stores, so its Engine computes what the model does."""
    m, shape, rng, ds = _pretrained_tiny(8)
    if bits == 2:   # (4 bits with activations is int4-full: test_int4_full_qat_...)
        with pytest.raises(ValueError, match="activations=False"):
            quant.prepare_qat(m, shape, weight_bits=bits)
    quant.prepare_qat(m, shape, weight_bits=bits, activations=False)
    assert not any(isinstance(x, quant.FakeQuantize) for x in m.modules())
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.01, progress=False, callbacks=[quant.FreezeBatchNorm(2)])
    quant.convert(m)
    e = eo.deploy.compile(m, scheme, input_shape=shape)
    x = rng.standard_normal((16,) + shape[1:]).astype(np.float32)
    m.eval()
    a = m(x)
    assert np.abs(e.run(x) - a).max() <= 1e-4 * np.abs(a).max()
    # and the weights are really on the b-bit grid: another quantization changes nothing
    g = fold_batchnorm(trace(m, shape))
    for n in g.nodes:
        if n.op in ("conv2d", "linear"):
            w = n.params["weight"].astype(np.float64)
            s = np.abs(w.reshape(len(w), -1)).max(1) / (2 ** (bits - 1) - 1)
            k = w / s.reshape((-1,) + (1,) * (w.ndim - 1))
            assert np.abs(k - np.round(k)).max() < 1e-3
    with pytest.raises(ValueError, match="weight_bits"):
        quant.prepare_qat(_tiny(), shape, weight_bits=3, activations=False)


def test_qat_on_mobilenet_v3_with_squeeze_excitation_and_hardswish():
    """Squeeze-excitation (fc2 + hard-sigmoid as a conv with a table, the channel scale) and
    hard-swish points get their fake quantizers too, and the converted model deploys without
    calibration close to itself."""
    eo.manual_seed(4)
    m = eo.models.create("mobilenet_v3_small", num_classes=10, width_mult=0.25)
    shape = (1, 3, 32, 32)
    rng = np.random.default_rng(9)
    ds = eo.data.Dataset((rng.random((128,) + shape[1:]) * 255).astype(np.uint8), rng.integers(0, 10, 128))
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.05, progress=False)
    points = quantize_points(fold_batchnorm(trace(m, shape)))
    quant.prepare_qat(m, shape)
    assert len([x for x in m.modules() if isinstance(x, quant.FakeQuantize)]) == len(points)
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.005, progress=False,
                 callbacks=[quant.FreezeBatchNorm(2), quant.FreezeObservers(3)])
    quant.convert(m)
    g0 = fold_batchnorm(trace(m, shape))
    assert set(quantize_points(g0)) <= set(g0.qparams)
    e = eo.deploy.compile(m, "int8-full", input_shape=shape)
    mean, std = m.input_norm["mean"], m.input_norm["std"]
    x = ((ds.x[:64].astype(np.float32) / 255 - np.array(mean, np.float32).reshape(1, -1, 1, 1))
         / np.array(std, np.float32).reshape(1, -1, 1, 1)).astype(np.float32)
    m.eval()
    a, b = m(x), e.run(x)
    # this barely trained model's logits span ~15 output steps, so argmax says little; the two
    # agree to a few steps of the logits' learned scale (measured: at most 2)
    steps = np.abs(a - b) / [f for f in m.modules() if isinstance(f, quant.FakeQuantize)][-1].qparams()[0]
    assert steps.max() <= 4.01 and steps.mean() <= 1.0


def test_binary_qat_deploys_exactly():
    """Weight-only binary QAT: sign weights with alpha = mean|w| per channel (first and last
    layers at 8 bits), what the 'binary' scheme stores, so its Engine computes what the model does."""
    m, shape, rng, ds = _pretrained_tiny(10)
    quant.prepare_qat(m, shape, weight_bits=1, activations=False)
    kinds = [type(c._parametrizations["weight"].items[0]).__name__ for c in m.modules()
             if isinstance(c, (nn.Conv2d, nn.Linear))]
    assert kinds[0] == kinds[-1] == "FakeQuantWeight" and set(kinds[1:-1]) == {"BinaryWeight"}
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.01, progress=False, callbacks=[quant.FreezeBatchNorm(2)])
    quant.convert(m)
    e = eo.deploy.compile(m, "binary", input_shape=shape)
    x = rng.standard_normal((16,) + shape[1:]).astype(np.float32)
    m.eval()
    a = m(x)
    assert np.abs(e.run(x) - a).max() <= 1e-4 * np.abs(a).max()
    g = fold_batchnorm(trace(m, shape))
    convs = [n for n in g.nodes if n.op in ("conv2d", "linear")]
    for n in convs[1:-1]:   # every channel is +-alpha
        w = np.abs(n.params["weight"].reshape(len(n.params["weight"]), -1))
        np.testing.assert_allclose(w, w[:, :1].repeat(w.shape[1], 1), rtol=1e-5)


def test_binary_activations_deploy_as_xnor_convs():
    """binary_activations=True: the activation a binarized conv alone reads becomes a sign
    (clipped STE), and the 'binary' Engine runs each (sign, conv) pair as one XNOR-popcount op
    that computes what the model does: alpha * (sign x . sign w) + folded bias."""
    m, shape, rng, ds = _pretrained_tiny(11)
    with pytest.raises(ValueError, match="binary_activations"):
        quant.prepare_qat(copy.deepcopy(m), shape, weight_bits=4, activations=False, binary_activations=True)
    quant.prepare_qat(m, shape, weight_bits=1, activations=False, binary_activations=True)
    signs = [name for name, c in m.named_modules() if isinstance(c, nn.BinarySign)]
    assert len(signs) == 9 and all(s.endswith("body.relu1") for s in signs)   # conv2's input in each block
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.01, progress=False, callbacks=[quant.FreezeBatchNorm(2)])
    quant.convert(m)
    e = eo.deploy.compile(m, "binary", input_shape=shape)
    rows = e.summary()
    assert [r["op"] for r in rows].count("b1_conv2d") == 9
    # the skip connections' adds and ReLUs run inside the XNOR convs (all but the two blocks whose
    # shortcut is a conv, which takes the add itself)
    assert not [r for r in rows if r["op"] in ("add", "activation")]
    assert sum("+res" in r["info"] for r in rows if r["op"] == "b1_conv2d") == 7
    x = rng.standard_normal((16,) + shape[1:]).astype(np.float32)
    m.eval()
    a, b = m(x), e.run(x)
    # the integer dot is exact in the Engine and a float sum of +-alpha in the model: they differ by
    # float rounding, which can flip a later sign only for an input within rounding of 0
    assert np.abs(b - a).max() <= 1e-3 * np.abs(a).max()
    assert (a.argmax(1) == b.argmax(1)).all()
    with pytest.raises(ValueError, match="binary activation"):
        eo.deploy.compile(m, "fp32", input_shape=shape)


def test_binary_activations_all_wraps_a_conv_outside_a_sequential_and_keeps_the_model_s_mode():
    """A binarized conv that is a ResidualBlock's whole body (no Sequential to put a sibling in) gets
    Sequential(sign, module) in its place; the inserted signs take the model's mode, so an
    eval-mode forward leaves their thresholds unset; copies keep whether they were set."""
    eo.manual_seed(5)
    m = nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(1, 4, 3, padding=1)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
        ("block", nn.ResidualBlock(nn.Conv2d(4, 4, 3, padding=1), None, nn.ReLU())),
        ("pool", nn.GlobalAvgPool2d()), ("flatten", nn.Flatten()), ("fc", nn.Linear(4, 3))]))
    m.eval()
    quant.prepare_qat(m, (1, 1, 8, 8), weight_bits=1, activations=False, binary_activations=np.bool_(True))
    assert not any(isinstance(c, nn.BinarySign) for c in m.modules())   # the block's input is shared
    m = nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(1, 4, 3, padding=1)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
        ("block", nn.ResidualBlock(nn.Conv2d(4, 4, 3, padding=1), None, nn.ReLU())),
        ("pool", nn.GlobalAvgPool2d()), ("flatten", nn.Flatten()), ("fc", nn.Linear(4, 3))]))
    m.eval()
    quant.prepare_qat(m, (1, 1, 8, 8), weight_bits=1, activations=False, binary_activations="all")
    assert list(m.block.body._modules) == ["sign", "module"] and isinstance(m.block.body.module, nn.Conv2d)
    sign = m.block.body.sign
    assert not sign.training
    x = np.abs(np.random.default_rng(0).standard_normal((4, 1, 8, 8))).astype(np.float32)
    m(x)
    assert not sign.threshold_initialized and (sign.threshold.data == 0).all()
    m.train()
    m(x)
    assert sign.threshold_initialized and (sign.threshold.data > 0).all()
    c = copy.deepcopy(m)
    assert c.block.body.sign.threshold_initialized
    np.testing.assert_array_equal(c.block.body.sign.threshold.data, sign.threshold.data)
    m.eval()
    quant.convert(m)
    e = eo.deploy.compile(m, "binary", input_shape=(1, 1, 8, 8))
    assert [r["op"] for r in e.summary()].count("b1_conv2d") == 1


def test_binary_activations_all_binarizes_every_binary_conv_with_learned_thresholds():
    """binary_activations='all': every binarized conv of groups 1 reads signs (the survey's binary
    networks), including those reading a residual stream, where a thresholded sign goes in front
    of the conv and the shortcut keeps the real value; each threshold starts at its channel's
    mean (a ReLU's output has all signs +1 at threshold 0) and trains; the 'binary' Engine runs
    every such conv as an XNOR conv with that threshold and computes what the model does."""
    m, shape, rng, ds = _pretrained_tiny(12)
    for bad, err in (("some", ValueError), (1, TypeError)):
        with pytest.raises(err, match="binary_activations"):
            quant.prepare_qat(copy.deepcopy(m), shape, weight_bits=1, activations=False, binary_activations=bad)
    convs = quant.binary_conv_layers(fold_batchnorm(trace(m, shape)))
    assert len(convs) == 20   # resnet20: 18 body convs and 2 shortcut projections; not the stem
    quant.prepare_qat(m, shape, weight_bits=1, activations=False, binary_activations="all")
    signs = {name: c for name, c in m.named_modules() if isinstance(c, nn.BinarySign)}
    assert len(signs) == 20 and all(c.threshold is not None for c in signs.values())
    assert "layer1.0.body.conv1_sign" in signs and "layer2.0.shortcut.0_sign" in signs
    assert all(not c.threshold_initialized for c in signs.values())
    eo.train.fit(m, ds, epochs=1, batch_size=32, lr=0.01, progress=False, callbacks=[quant.FreezeBatchNorm(2)])
    ts = signs["layer1.0.body.conv1_sign"].threshold.data
    assert all(c.threshold_initialized for c in signs.values()) and (ts > 0).all()   # above a ReLU's zeros
    quant.convert(m)
    e = eo.deploy.compile(m, "binary", input_shape=shape)
    rows = e.summary()
    b1 = [r for r in rows if r["op"] == "b1_conv2d"]
    assert len(b1) == 20 and all("threshold" in r["info"] for r in b1)
    assert [r["op"] for r in rows].count("conv2d") == 1   # the stem (8-bit weights, f32 compute)
    x = rng.standard_normal((16,) + shape[1:]).astype(np.float32)
    m.eval()
    a, b = m(x), e.run(x)
    # exact integer dots against the model's float sums: a sign can differ only for a value within
    # float rounding of its threshold, rare with trained thresholds (but then carried on through
    # the binary layers, so allow one image of the 16 to differ)
    close = np.abs(b - a).max(axis=1) <= 1e-3 * np.abs(a).max()
    assert close.sum() >= 15 and (a.argmax(1) == b.argmax(1)).sum() >= 15

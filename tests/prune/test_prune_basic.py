"""edgeopt.prune.magnitude / sparsity: exact counts (global and per layer), the global threshold,
block pruning in aligned blocks, the original model untouched, biases and BatchNorm untouched.
Pruning installs masks (weight_orig x weight_mask): weights are read as the layer computes with
them (masks applied); tests/prune/test_prune_masks.py covers the masks themselves."""
import numpy as np
import pytest

import edgeopt as eo


@pytest.fixture(scope="module")
def model():
    eo.manual_seed(0)
    return eo.models.create("resnet20")


def _weights(m):
    return {name: eo.prune.effective_weight(mod) for name, mod in eo.prune.prunable_layers(m)}


def _target(s, n):
    return int(np.floor(s * n + 0.5))


@pytest.mark.parametrize("s", [0.5, 0.8, 0.9])
def test_global_exact_count_and_one_threshold(model, s):
    before = {k: v.copy() for k, v in model.state_dict().items()}
    p = eo.prune.magnitude(model, sparsity=s, scope="global")
    assert p is not model
    info = eo.prune.sparsity(p)
    total = sum(w.size for w in _weights(model).values())
    assert info["total"] == total and info["zeros"] == _target(s, total)
    assert info["overall"] == pytest.approx(_target(s, total) / total)
    # one threshold for the network: every pruned |w| <= every kept |w|
    pruned_max, kept_min = 0.0, np.inf
    for (name, w0), w1 in zip(_weights(model).items(), _weights(p).values()):
        assert np.all((w1 == 0) | (w1 == w0)), name  # kept weights unchanged
        pruned_max = max(pruned_max, np.abs(w0[w1 == 0]).max(initial=0.0))
        kept_min = min(kept_min, np.abs(w0[w1 != 0]).min(initial=np.inf))
    assert pruned_max <= kept_min
    # the original is untouched; the copy holds every original value (conv / linear weights as
    # weight_orig, beside their masks), so pruning is undoable until prune.remove
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    state = p.state_dict()
    weight_keys = {f"{n}.weight" for n in _weights(model)}
    assert {k for k in state if k.endswith(("weight_orig", "weight_mask"))} == \
        {f"{k}_orig" for k in weight_keys} | {f"{k}_mask" for k in weight_keys}
    for k, v in before.items():
        np.testing.assert_array_equal(state[f"{k}_orig" if k in weight_keys else k], v, err_msg=k)
    assert info["layers"].keys() == _weights(model).keys()


def test_per_layer_exact_count(model):
    p = eo.prune.magnitude(model, sparsity=0.7, scope="layer")
    info = eo.prune.sparsity(p)
    for name, w in _weights(p).items():
        assert w.size - np.count_nonzero(w) == _target(0.7, w.size), name
        assert info["layers"][name] == pytest.approx(_target(0.7, w.size) / w.size)
    # within a layer, pruned magnitudes are the smallest
    for (name, w0), w1 in zip(_weights(model).items(), _weights(p).values()):
        if (w1 == 0).any() and (w1 != 0).any():
            assert np.abs(w0[w1 == 0]).max() <= np.abs(w0[w1 != 0]).min(), name


def test_linear_bias_untouched_and_forward_runs():
    eo.manual_seed(1)
    m = eo.models.create("mobilenet_v2")
    p = eo.prune.magnitude(m, 0.9)
    np.testing.assert_array_equal(p.classifier[1].bias.data, m.classifier[1].bias.data)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert p.forward(x).shape == (2, 10)
    assert eo.prune.sparsity(p)["overall"] == pytest.approx(0.9, abs=1e-6)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_block_pruning_in_aligned_blocks(model, scope):
    p = eo.prune.magnitude(model, sparsity=0.8, scope=scope, block=(8, 1))
    total_zeros, total = 0, 0
    for name, w in _weights(p).items():
        w2 = w.reshape(w.shape[0], -1)
        o, r = w2.shape
        nr = -(-o // 8)
        # every zero lies in a block whose existing elements are all zero
        full = np.zeros((nr * 8, r), bool)
        full[:o] = w2 == 0
        full[o:] = True
        blk_all = full.reshape(nr, 8, r).all(axis=1)
        assert np.array_equal(np.repeat(blk_all, 8, axis=0)[:o], w2 == 0), name
        zeros = int((w2 == 0).sum())
        if scope == "layer":  # overshoot below one block
            assert _target(0.8, w.size) <= zeros < _target(0.8, w.size) + 8, name
        total_zeros += zeros
        total += w.size
    if scope == "global":
        assert _target(0.8, total) <= total_zeros < _target(0.8, total) + 8


def test_edges_and_bad_arguments(model):
    p0 = eo.prune.magnitude(model, 0.0)
    assert eo.prune.sparsity(p0)["zeros"] == eo.prune.sparsity(model)["zeros"]
    p1 = eo.prune.magnitude(model, 1.0, scope="layer")
    assert eo.prune.sparsity(p1)["overall"] == 1.0
    for kw, exc in (({"sparsity": 1.5}, ValueError), ({"sparsity": -0.1}, ValueError),
                    ({"sparsity": "0.5"}, TypeError), ({"sparsity": True}, TypeError),
                    ({"scope": "net"}, ValueError), ({"block": (0, 1)}, ValueError),
                    ({"block": (8,)}, TypeError), ({"block": "8x1"}, TypeError)):
        with pytest.raises(exc, match=next(iter(kw))):  # wrong type: TypeError (edgeopt._check)
            eo.prune.magnitude(model, **kw)
    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        eo.prune.magnitude(eo.nn.Sequential(eo.nn.ReLU()), 0.5)

"""Pruning masks (weight_orig x weight_mask) hold through fine-tuning and deploy sparse.

The issue-11 "Masks hold" test: resnet20 (half width, same structure) pruned to 80 % global
sparsity and fine-tuned 50 steps with each optimizer keeps exactly the same zeros, and deploys to
sparse ops built from the masked weights. Also: prune.remove, iterative pruning, sparsity."""
import numpy as np
import pytest

import edgeopt as eo
from tolerances import TOL

SHAPE = (3, 16, 16)


@pytest.fixture(scope="module")
def pruned():
    eo.manual_seed(0)
    model = eo.models.create("resnet20", num_classes=10, in_channels=3, width_mult=0.5)
    return eo.prune.magnitude(model, sparsity=0.8, scope="global")


@pytest.fixture(scope="module")
def data():
    train, _ = eo.data.synthetic(num_classes=10, shape=SHAPE, n_train=400, n_test=0, seed=0)
    return train


def _zeros(model):
    return {name: eo.prune.effective_weight(m) == 0 for name, m in eo.prune.prunable_layers(model)}


@pytest.mark.parametrize("optimizer,momentum,weight_decay,lr", [
    ("sgd", 0.0, 0.0, 0.05),      # plain SGD
    ("sgd", 0.9, 5e-4, 0.05),     # momentum, Nesterov (fit uses it with momentum), weight decay
    ("adam", 0.9, 5e-4, 1e-3),
], ids=["sgd", "sgd-nesterov-wd", "adam"])
def test_masks_hold_through_fit_and_deploy_sparse(pruned, data, optimizer, momentum, weight_decay, lr):
    import copy

    model = copy.deepcopy(pruned)
    before = _zeros(model)
    assert eo.prune.sparsity(model)["overall"] == pytest.approx(0.8, abs=1e-4)
    orig = {n: m.weight_orig.data.copy() for n, m in eo.prune.prunable_layers(model)}
    eo.train.fit(model, data, epochs=1, batch_size=8, lr=lr, optimizer=optimizer, momentum=momentum,
                 weight_decay=weight_decay, progress=False)  # 400 / 8 = 50 steps
    after = _zeros(model)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    trained = [n for n, m in eo.prune.prunable_layers(model)
               if not np.array_equal(m.weight_orig.data[~before[n]], orig[n][~before[n]])]
    assert len(trained) == len(before)  # the kept weights did train

    # global pruning leaves the shortcuts and fc below sparse="auto"'s 70 %: force the sparse ops
    engine = eo.deploy.compile(model, input_shape=(1, *SHAPE), sparse=True)
    ops = [r["op"] for r in engine.summary()]
    assert "sparse_conv1x1" in ops and "sparse_linear" in ops
    x = np.random.default_rng(0).standard_normal((2, *SHAPE)).astype(np.float32)
    model.eval()
    with eo.nn.no_grad():
        np.testing.assert_allclose(engine.run(x), model(x), rtol=TOL["f32"].rtol, atol=TOL["f32"].atol)
    # the tracer reads the masked weights: the same engine as from the masks made permanent
    stripped = eo.prune.remove(model)
    assert engine.to_bytes() == eo.deploy.compile(stripped, input_shape=(1, *SHAPE), sparse=True).to_bytes()


def test_remove_makes_masks_permanent(pruned):
    stripped = eo.prune.remove(pruned)
    assert eo.nn.parametrize.is_parametrized(pruned.fc)  # the original keeps its masks
    state = stripped.state_dict()
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    for (name, m), (_, s) in zip(eo.prune.prunable_layers(pruned), eo.prune.prunable_layers(stripped)):
        assert isinstance(s.weight, eo.nn.Parameter)
        np.testing.assert_array_equal(s.weight.data, m.weight_orig.data * m.weight_mask, err_msg=name)
    assert eo.prune.sparsity(stripped) == eo.prune.sparsity(pruned)
    assert eo.prune.remove(stripped).state_dict().keys() == state.keys()  # nothing to strip: a plain copy

    mixed = eo.prune.magnitude(pruned, 0.8)
    eo.nn.parametrize.register_parametrization(mixed.fc, "weight", _Identity())
    with pytest.raises(ValueError, match="model: 'fc.weight' has parametrizations besides its pruning mask "
                                         r"\(_Identity\)"):
        eo.prune.remove(mixed)


class _Identity:
    def forward(self, w):
        return w

    def backward(self, dw):
        return dw


def test_sparsity_reads_masked_weights_and_pruning_again_keeps_pruned_weights_pruned(pruned):
    for _, m in eo.prune.prunable_layers(pruned):
        assert np.count_nonzero(m.weight_orig.data) == m.weight_orig.size  # the values are kept under the mask
    first = _zeros(pruned)
    more = eo.prune.magnitude(pruned, sparsity=0.9, scope="layer")
    assert eo.prune.sparsity(more)["overall"] == pytest.approx(0.9, abs=1e-3)
    for name, z in _zeros(more).items():
        assert z[first[name]].all(), name  # masks only shrink
    less = eo.prune.magnitude(pruned, sparsity=0.5)
    assert all(np.array_equal(z, first[n]) for n, z in _zeros(less).items())  # nothing regrows
    # one mask per weight, updated in place
    assert list(more.fc.state_dict()) == ["weight_orig", "bias", "weight_mask"]
    assert len(eo.nn.parametrize.parametrizations(more.fc, "weight")) == 1

"""Module machinery: registration, traversal, modes, state dicts, hooks, errors."""
import copy

import numpy as np
import pytest
import torch
from torch_oracle import assert_close, torch_state_to_numpy

import edgeopt as eo
from edgeopt import nn


def small_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


def torch_small_net():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
                               torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 4 * 4, 10))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(np.ones(2, np.float32))
        self.register_buffer("seen", np.zeros((), np.int64))
        self.register_buffer("scratch", np.zeros(3, np.float32), persistent=False)


def x_img(rng, n=2, c=3, hw=8):
    return rng.standard_normal((n, c, hw, hw)).astype(np.float32)


def test_parameter_basics():
    p = nn.Parameter(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert p.data.dtype == np.float32 and p.shape == (2, 3) and p.data.flags.c_contiguous
    assert p.grad.shape == (2, 3) and not p.grad.any()
    p.data = np.ones((4,))
    assert p.grad.shape == (4,)
    with pytest.raises(TypeError):
        nn.Parameter(np.array(["a"]))


def test_registration_and_names():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "seen", "scratch", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert list(net.state_dict()) == [
        "scale", "seen", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
        "head.weight", "head.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "act", "head"]
    assert [n for n, _ in net.named_children()] == ["features", "act", "head"]
    assert len(list(net.modules())) == 6 and len(list(net.parameters())) == 7
    assert len(list(net.parameters(recurse=False))) == 1
    net.head = None
    assert "head" not in dict(net.named_children())
    with pytest.raises(TypeError, match="scale"):
        net.scale = np.ones(2)
    with pytest.raises(AttributeError, match="nonexistent"):
        net.nonexistent  # noqa: B018


def test_shared_parameters_listed_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2


def test_names_match_torch():
    e, t = small_net(), torch_small_net()
    assert list(e.state_dict()) == list(t.state_dict())
    assert [n for n, _ in e.named_parameters()] == [n for n, _ in t.named_parameters()]


def test_train_eval_recursive():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(TypeError):
        net.train("no")


def test_zero_grad(rng):
    net = small_net()
    y = net(x_img(rng))
    net.backward(np.ones_like(y))
    assert any(p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert not any(p.grad.any() for p in net.parameters())


def test_gradients_accumulate(rng):
    lin = nn.Linear(4, 3)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    dy = rng.standard_normal((5, 3)).astype(np.float32)
    lin(x)
    lin.backward(dy)
    once = lin.weight.grad.copy()
    lin(x)
    lin.backward(dy)
    assert_close(lin.weight.grad, 2 * once, "accumulated gradient")


def test_state_dict_round_trip(rng):
    eo.manual_seed(1)
    a = small_net()
    x = x_img(rng)
    a.train()
    a(x)  # move the running statistics
    a.eval()
    sd = a.state_dict()
    sd["0.weight"][...] = 0  # a copy: the model is untouched
    assert a[0].weight.data.any()
    sd = a.state_dict()
    eo.manual_seed(2)
    b = small_net().eval()
    assert not np.allclose(a(x), b(x))
    assert b.load_state_dict(sd) == ([], [])
    np.testing.assert_array_equal(a(x), b(x))
    assert int(b[1].num_batches_tracked) == 1
    sd["0.weight"][...] = 0  # loading copied in: b keeps its values
    assert b[0].weight.data.any()


def test_load_torch_state_dict(rng):
    t = torch_small_net()
    t.train()
    xt = torch.from_numpy(x_img(rng))
    t(xt)  # nontrivial running statistics
    t.eval()
    e = small_net().eval()
    e.load_state_dict(torch_state_to_numpy(t))
    x = x_img(rng)
    with torch.no_grad():
        assert_close(e(x), t(torch.from_numpy(x)), "eval output after loading torch weights")
    e2 = small_net().eval()
    e2.load_state_dict(t.state_dict())  # tensors work directly too
    np.testing.assert_array_equal(e2(x), e(x))


def test_load_state_dict_errors():
    net = small_net()
    sd = net.state_dict()
    missing = dict(sd)
    del missing["1.running_var"]
    with pytest.raises(KeyError, match=r"missing key\(s\): '1.running_var'"):
        net.load_state_dict(missing)
    extra = dict(sd, **{"7.weight": np.zeros(3, np.float32)})
    with pytest.raises(KeyError, match=r"unexpected key\(s\): '7.weight'"):
        net.load_state_dict(extra)
    assert net.load_state_dict(extra, strict=False) == ([], ["7.weight"])
    assert net.load_state_dict(missing, strict=False).missing_keys == ["1.running_var"]
    bad = dict(sd, **{"5.weight": np.zeros((10, 7), np.float32), "0.weight": np.zeros_like(sd["0.weight"])})
    with pytest.raises(ValueError, match=r"size mismatch for '5.weight'.*\(10, 7\).*\(10, 128\)"):
        net.load_state_dict(bad)
    assert net[0].weight.data.any()  # nothing copied when any entry is bad
    with pytest.raises(TypeError):
        net.load_state_dict([1, 2])


def test_forward_hooks(rng):
    net = small_net()
    seen = []
    h1 = net[2].register_forward_hook(lambda m, inp, out: seen.append((type(m).__name__, inp[0].shape, out.shape)))
    x = x_img(rng)
    y = net(x)
    assert seen == [("ReLU", (2, 8, 8, 8), (2, 8, 8, 8))]
    h1.remove()
    net(x)
    assert len(seen) == 1
    # A hook may replace the output (here: on the whole model).
    with net.register_forward_hook(lambda m, inp, out: out * 0):
        assert not net(x).any()
    np.testing.assert_array_equal(net(x), y)


def test_feature_capture_with_hooks_for_distillation(rng):
    net = small_net()
    feats = {}
    handles = [m.register_forward_hook(lambda m, i, o, name=name: feats.__setitem__(name, o))
               for name, m in net.named_modules() if isinstance(m, (nn.ReLU, nn.Linear))]
    net(x_img(rng))
    assert sorted(feats) == ["2", "5"] and feats["5"].shape == (2, 10)
    for h in handles:
        h.remove()


def test_repr_like_torch():
    e, t = small_net(), torch_small_net()
    r = repr(e)
    assert r.splitlines()[0] == "Sequential(" and r.endswith(")")
    assert "(0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)" in r
    assert "(5): Linear(in_features=128, out_features=10, bias=True)" in r
    assert repr(e[0]) == repr(t[0])
    assert repr(e[5]) == repr(t[5])


def test_sequential_container():
    s = nn.Sequential(nn.ReLU(), nn.Sigmoid())
    assert len(s) == 2 and isinstance(s[1], nn.Sigmoid) and isinstance(s[-1], nn.Sigmoid)
    s.append(nn.Flatten())
    assert len(s) == 3 and [type(m).__name__ for m in s] == ["ReLU", "Sigmoid", "Flatten"]
    tail = s[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2
    with pytest.raises(IndexError):
        s[3]  # noqa: B018
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), "relu")


def test_deepcopy_is_independent(rng):
    a = small_net()
    b = copy.deepcopy(a)
    b[0].weight.data[...] = 0
    assert a[0].weight.data.any()
    x = x_img(rng)
    a.eval()
    assert not np.array_equal(a(x), b.eval()(x))


def test_backward_needs_a_recorded_forward(rng):
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError, match=r"Conv2d\(3, 4.*backward\(\) called without a preceding forward"):
        conv.backward(np.zeros((1, 4, 6, 6), np.float32))
    x = x_img(rng)
    with nn.no_grad():
        y = conv(x)
        assert not nn.is_grad_enabled()
    assert nn.is_grad_enabled()
    with pytest.raises(RuntimeError, match="no_grad"):
        conv.backward(np.ones_like(y))
    conv(x)
    conv.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="single backward"):
        conv.backward(np.ones_like(y))
    net = small_net()
    with pytest.raises(RuntimeError):
        net.backward(np.zeros((2, 10), np.float32))


def test_eval_mode_still_backpropagates(rng):
    """Frozen BatchNorm (eval) inside a training model, as in QAT fine-tuning."""
    net = small_net()
    net[1].eval()
    y = net(x_img(rng))
    dx = net.backward(np.ones_like(y))
    assert dx.shape == (2, 3, 8, 8) and net[1].weight.grad.any()
    assert int(net[1].num_batches_tracked) == 0


LAYERS_4D = [
    lambda: nn.Conv2d(3, 16, 3), lambda: nn.BatchNorm2d(3), lambda: nn.MaxPool2d(2), lambda: nn.AvgPool2d(2),
    lambda: nn.GlobalAvgPool2d(), lambda: nn.SqueezeExcitation(3, 2),
]


@pytest.mark.parametrize("make", LAYERS_4D, ids=["conv", "bn", "maxpool", "avgpool", "gap", "se"])
def test_bad_inputs_raise_clear_errors(make, rng):
    layer = make()
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}.*4-d input.*\(3, 8, 8\)"):
        layer(rng.standard_normal((3, 8, 8)).astype(np.float32))
    with pytest.raises(TypeError, match=rf"{name}.*float32.*float64"):
        layer(rng.standard_normal((1, 3, 8, 8)))
    with pytest.raises(TypeError, match=rf"{name}.*float32.*int64"):
        layer(np.ones((1, 3, 8, 8), np.int64))
    with pytest.raises(ValueError, match=rf"{name}.*non-empty"):
        layer(np.zeros((0, 3, 8, 8), np.float32))
    with pytest.raises(TypeError, match=rf"{name}.*numpy.ndarray"):
        layer([[1.0]])


def test_channel_mismatch_names_layer(rng):
    with pytest.raises(ValueError, match=r"Conv2d\(3, 16, kernel_size=\(3, 3\).*expected input with 3 channels, got 5"):
        nn.Conv2d(3, 16, 3)(np.zeros((1, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d.*expected input with 4 channels, got 3"):
        nn.BatchNorm2d(4)(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="Linear.*expected input with 8 features, got 7"):
        nn.Linear(8, 2)(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="Linear"):
        nn.Linear(8, 2)(np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="smaller than the"):
        nn.Conv2d(3, 4, 5)(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="smaller than the"):
        nn.MaxPool2d(3)(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(ValueError, match="ResidualBlock.*shape"):
        nn.ResidualBlock(nn.Conv2d(3, 4, 1))(np.zeros((1, 3, 4, 4), np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels"):
        nn.Conv2d(0, 4, 3)
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(3, 4, 2.5)
    with pytest.raises(ValueError, match="padding"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm2d(3, momentum=2.0)


def test_non_contiguous_input_same_result(rng):
    net = small_net().eval()
    x = x_img(rng, n=4)
    view = x[::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(net(view), net(np.ascontiguousarray(view)))
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(net(xt), net(x))


ALL_LAYERS = {
    "conv": lambda: nn.Conv2d(3, 4, 3, padding=1), "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(48, 5)),
    "bn": lambda: nn.BatchNorm2d(3), "relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.HardSwish,
    "hardsigmoid": nn.HardSigmoid, "sigmoid": nn.Sigmoid, "maxpool": lambda: nn.MaxPool2d(2),
    "avgpool": lambda: nn.AvgPool2d(2), "gap": nn.GlobalAvgPool2d, "flatten": nn.Flatten, "dropout": nn.Dropout,
    "identity": nn.Identity, "residual": lambda: nn.ResidualBlock(nn.Conv2d(3, 3, 3, padding=1), activation=nn.ReLU()),
    "se": lambda: nn.SqueezeExcitation(3, 2),
}


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_bad_gradients_raise_clear_errors(name, rng):
    layer = ALL_LAYERS[name]()
    y = layer(x_img(rng, hw=4))
    with pytest.raises(ValueError, match=r"backward: expected dy of shape"):
        layer.backward(np.zeros((1,) + y.shape[1:], np.float32))
    with pytest.raises(TypeError, match=r"backward: expected float32 dy, got dtype float64"):
        layer.backward(np.zeros(y.shape))
    with pytest.raises(TypeError, match=r"backward: expected dy as a numpy.ndarray"):
        layer.backward(0.0)
    # A failed call keeps the record: a correct dy still works, also non-contiguous.
    dy = np.asfortranarray(rng.standard_normal(y.shape).astype(np.float32))
    dx = layer.backward(dy)
    assert dx.shape == (2, 3, 4, 4) and dx.dtype == np.float32


def test_pickle_round_trip(rng):
    import pickle

    net = small_net().eval()
    x = x_img(rng)
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone(x), net(x))
    assert list(clone.state_dict()) == list(net.state_dict())

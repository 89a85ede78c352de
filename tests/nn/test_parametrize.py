"""edgeopt.nn.parametrize: a layer computes with p(weight_orig) and trains weight_orig.

Gradients through one and through composed parametrizations against finite differences (Conv2d,
Linear, BatchNorm2d), composition order, remove, state_dict and checkpoint round trips, errors
that name the module and the tensor, and forward pre-hooks."""
import numpy as np
import pytest

import edgeopt as eo
from edgeopt.nn import parametrize as P
from gradcheck import gradcheck


class Scale:
    """w -> a * w (linear: backward needs nothing from forward)."""

    def __init__(self, a):
        self.a = np.float32(a)

    def forward(self, w):
        return w * self.a

    def backward(self, dw):
        return dw * self.a


class Tanh:
    """w -> tanh(w) (nonlinear: backward uses what the latest forward kept)."""

    def forward(self, w):
        self.y = np.tanh(w)
        return self.y

    def backward(self, dw):
        return dw * (1 - self.y * self.y)


class Center:
    """w -> w - mean(w): a projection, not elementwise, so the order of backwards matters."""

    def forward(self, w):
        return w - w.mean(dtype=np.float32)

    def backward(self, dw):
        return dw - dw.mean(dtype=np.float32)


class Offset:
    """w -> w + offset, with the offset as a buffer (saved as <name>_offset)."""

    def __init__(self, shape, value):
        self.offset = np.full(shape, value, np.float32)
        self.buffers = {"offset": self.offset}

    def forward(self, w):
        return w + self.offset

    def backward(self, dw):
        return dw


def _rng():
    return np.random.default_rng(0)


def _layers():
    eo.manual_seed(0)
    x4 = _rng().standard_normal((2, 3, 6, 6)).astype(np.float32)
    return [(eo.nn.Conv2d(3, 4, 3, padding=1), x4), (eo.nn.Linear(5, 3), x4[:, 0, 0, :5].copy()),
            (eo.nn.BatchNorm2d(3), x4)]


@pytest.mark.parametrize("i", range(3))
def test_gradients_through_composed_parametrizations_match_finite_differences(i):
    layer, x = _layers()[i]
    w0 = layer.weight.data.copy()
    a = _rng().uniform(0.5, 2.0, w0.shape).astype(np.float32)  # per element: Scale and Center do not commute
    for p in (Scale(a), Tanh(), Center()):
        P.register_parametrization(layer, "weight", p)
    assert [n for n, _ in layer.named_parameters()] == ["weight_orig", "bias"]
    t = np.tanh(a * w0)
    np.testing.assert_allclose(layer.weight, t - t.mean(), rtol=1e-5, atol=1e-6)  # forward in registration order
    gradcheck(layer, x, n_coords=6)  # perturbs weight_orig: the gradient went back through all three


def test_the_layer_computes_with_the_parametrized_weight_and_grads_reach_orig():
    conv, x = _layers()[0]
    ref = eo.nn.Conv2d(3, 4, 3, padding=1)
    ref.load_state_dict(conv.state_dict())
    P.register_parametrization(conv, "weight", Tanh())
    P.register_parametrization(conv, "weight", Scale(-2.0))  # (-2) * tanh(w): order matters
    ref.weight.data = -2.0 * np.tanh(conv.weight_orig.data)
    y = conv(x)
    np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-6)
    dy = _rng().standard_normal(y.shape).astype(np.float32)
    conv.zero_grad()
    ref.zero_grad()
    np.testing.assert_allclose(conv.backward(dy), ref.backward(dy), rtol=1e-5, atol=1e-6)
    dorig = ref.weight.grad * -2.0 * (1 - np.tanh(conv.weight_orig.data) ** 2)  # chain rule by hand
    np.testing.assert_allclose(conv.weight_orig.grad, dorig, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(conv.bias.grad, ref.bias.grad, rtol=1e-5, atol=1e-6)
    conv(x)
    conv.backward(dy)  # a second backward accumulates, as every parameter gradient does
    np.testing.assert_allclose(conv.weight_orig.grad, 2 * dorig, rtol=1e-4, atol=1e-6)


def test_optimizer_trains_weight_orig():
    lin, x = _layers()[1]
    mask = np.ones(lin.weight.shape, np.float32)
    mask[0] = 0
    P.register_parametrization(lin, "weight", eo.prune.Mask(mask))
    opt = eo.optim.SGD(lin.named_parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    before = lin.weight_orig.data.copy()
    for _ in range(3):
        opt.zero_grad()
        lin.backward(np.ones_like(lin(x)))
        opt.step()
    assert not np.array_equal(lin.weight_orig.data[1:], before[1:])
    assert (lin.weight[0] == 0).all()


def test_remove_makes_the_value_permanent():
    conv, x = _layers()[0]
    param = conv.weight
    P.register_parametrization(conv, "weight", Offset(conv.weight.shape, 0.25))
    P.register_parametrization(conv, "weight", Scale(2.0))
    assert P.is_parametrized(conv) and P.is_parametrized(conv, "weight") and not P.is_parametrized(conv, "bias")
    assert list(conv.state_dict()) == ["weight_orig", "bias", "weight_offset"]
    y = conv(x)
    expected = 2.0 * (param.data + 0.25)
    assert P.remove_parametrizations(conv, "weight") is conv
    assert conv.weight is param and list(conv.state_dict()) == ["weight", "bias"]  # same Parameter, same place
    np.testing.assert_allclose(conv.weight.data, expected, rtol=1e-6)
    assert not P.is_parametrized(conv) and P.parametrizations(conv, "weight") == ()
    np.testing.assert_array_equal(conv(x), y)
    conv.weight = eo.nn.Parameter(np.zeros(conv.weight.shape))  # a plain parameter again
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*no parametrization on 'weight'"):
        P.remove_parametrizations(conv, "weight")


def _net():
    return eo.nn.Sequential(eo.nn.Conv2d(3, 4, 3, padding=1), eo.nn.BatchNorm2d(4), eo.nn.ReLU(),
                            eo.nn.GlobalAvgPool2d(), eo.nn.Flatten(), eo.nn.Linear(4, 2))


def _parametrize(net, value):
    for i in (0, 1, 5):
        P.register_parametrization(net[i], "weight", Offset(net[i].weight.shape, value))
    return net


def test_state_dict_and_checkpoint_round_trip(tmp_path):
    eo.manual_seed(1)
    src = _parametrize(_net(), 0.5)
    for i in (0, 1, 5):
        src[i].weight_offset[...] = _rng().standard_normal(src[i].weight.shape)  # in place: the buffer is shared
    x = _rng().standard_normal((2, 3, 5, 5)).astype(np.float32)
    src.eval()
    y = src(x)
    state = src.state_dict()
    assert {"0.weight_orig", "0.weight_offset", "1.weight_orig", "1.weight_offset", "5.weight_orig"} <= set(state)
    assert "0.weight" not in state

    eo.manual_seed(2)  # a fresh model: other weights, the same parametrizations
    dst = _parametrize(_net(), 0.0).eval()
    assert not np.allclose(dst(x), y)
    dst.load_state_dict(state)
    np.testing.assert_array_equal(dst(x), y)  # the offsets loaded into the arrays the parametrizations use

    eo.manual_seed(3)
    again = _parametrize(_net(), 0.0).eval()
    eo.train.save_checkpoint(tmp_path / "ckpt.npz", src)
    eo.train.load_checkpoint(tmp_path / "ckpt.npz", again)
    np.testing.assert_array_equal(again(x), y)

    plain = _net()
    with pytest.raises(eo.nn.StateDictError, match="0.weight_orig"):
        plain.load_state_dict(state)


class _WrongShape:
    def forward(self, w):
        return w[:1]

    def backward(self, dw):
        return dw


class _NoBackward:
    def forward(self, w):
        return w


class _WrongDtype(_WrongShape):
    def forward(self, w):
        return w.astype(np.float64)


def test_bad_parametrizations_and_names_raise_and_leave_the_module_unchanged():
    conv, x = _layers()[0]
    y = conv(x)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*\.weight: parametrization _WrongShape.forward returned "
                                         r"shape \(1, 3, 3, 3\).*expected .*shape \(4, 3, 3, 3\)"):
        P.register_parametrization(conv, "weight", _WrongShape())
    with pytest.raises(ValueError, match=r"\.weight: parametrization _WrongDtype.forward returned .*float64"):
        P.register_parametrization(conv, "weight", _WrongDtype())
    assert not P.is_parametrized(conv) and "weight" in conv.state_dict()
    np.testing.assert_array_equal(conv(x), y)

    with pytest.raises(ValueError, match="name: BatchNorm2d.*has no parameter 'weight'"):
        P.register_parametrization(eo.nn.BatchNorm2d(3, affine=False), "weight", Scale(1))
    with pytest.raises(ValueError, match=r"name: Conv2d.* reads 'weight' through parametrizations, got 'bias'"):
        P.register_parametrization(conv, "bias", Scale(1))
    with pytest.raises(ValueError, match="reads no tensor"):
        P.register_parametrization(eo.nn.ReLU(), "weight", Scale(1))
    with pytest.raises(TypeError, match="parametrization.backward: expected a callable"):
        P.register_parametrization(conv, "weight", _NoBackward())
    with pytest.raises(TypeError, match="name: expected a str"):
        P.register_parametrization(conv, 0, Scale(1))
    with pytest.raises(TypeError, match="module: expected an edgeopt.nn.Module"):
        P.register_parametrization(conv.weight, "weight", Scale(1))
    with pytest.raises(ValueError, match="name: .* no parametrization on 'weight'"):
        P.remove_parametrizations(conv, "weight")

    # a parametrization that goes wrong later fails in the layer's forward, naming the tensor
    p = Scale(1.0)
    P.register_parametrization(conv, "weight", p)
    P.register_parametrization(conv, "weight", Offset(conv.weight.shape, 0.0))
    with pytest.raises(ValueError, match="buffers: Conv2d.*already has an attribute 'weight_offset'"):
        P.register_parametrization(conv, "weight", Offset(conv.weight.shape, 0.0))
    with pytest.raises(AttributeError, match="weight is parametrized.*weight_orig"):
        conv.weight = np.zeros((4, 3, 3, 3), np.float32)  # would shadow the parametrized value
    with pytest.raises(AttributeError, match="weight is parametrized.*remove_parametrizations"):
        conv.register_parameter("weight", eo.nn.Parameter(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="read-only"):
        conv.weight[...] = 0  # the parametrized value is computed: a write would be lost
    p.a = np.float64(2.0)  # now returns float64
    with pytest.raises(ValueError, match=r"\.weight: parametrization Scale.forward returned .*float64"):
        conv(x)


def test_forward_pre_hooks_run_in_order_may_replace_inputs_and_detach():
    relu = eo.nn.ReLU()
    seen = []
    h1 = relu.register_forward_pre_hook(lambda m, args: seen.append(("first", args[0].copy())))
    h2 = relu.register_forward_pre_hook(lambda m, args: -args[0])  # a single value replaces the one input
    relu.register_forward_hook(lambda m, args, out: seen.append(("after", args[0].copy())))
    x = np.array([[-1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(relu(x), [[1.0, 0.0]])
    assert seen[0][0] == "first" and np.array_equal(seen[0][1], x)
    assert seen[1][0] == "after" and np.array_equal(seen[1][1], -x)  # forward hooks see the replaced inputs
    h2.remove()
    h1.remove()
    seen.clear()
    np.testing.assert_array_equal(relu(x), [[0.0, 2.0]])
    assert [s[0] for s in seen] == ["after"]
    with pytest.raises(TypeError, match="hook: expected a callable"):
        relu.register_forward_pre_hook(3)

"""Training-time fusion (nn/container.py, nn/squeeze_excite.py): BatchNorm + activation, a
residual add folded into the BatchNorm that ends a ResidualBlock's body, and squeeze-excitation as
one call. Fused results agree with PyTorch and with the same modules run unfused (a forward hook
turns fusion off); hooks, eval mode and unsupported activations fall back to the unfused path."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch_oracle import assert_close, compare_layer

import edgeopt as eo
from edgeopt import nn
from edgeopt.nn import functional as F
from edgeopt.nn.activation import _FUSED
from edgeopt.prune import mask as prune_mask

ACTS = [(nn.ReLU, torch.nn.ReLU), (nn.ReLU6, torch.nn.ReLU6), (nn.HardSwish, torch.nn.Hardswish)]


def _randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _fused(act_module) -> bool:
    ctx = act_module._ctx
    return ctx is not None and ctx[1][0] is _FUSED


def _run(model, x, dy):
    """forward + backward; returns output, dx and every parameter gradient."""
    eo.manual_seed(0)  # the same dropout masks every run
    model.zero_grad()
    y = model(x.copy())
    dx = model.backward(dy.copy())
    return [y, dx] + [p.grad.copy() for _, p in model.named_parameters()]


def _unfused(model):
    """Forward hooks on every module switch fusion off for them."""
    return [m.register_forward_hook(lambda *a: None) for m in model.modules()]


def _assert_same_as_unfused(model, x, rng, tol=1e-5):
    dy = _randn(rng, *model(x.copy()).shape)
    model.zero_grad()
    fused = _run(model, x, dy)
    handles = _unfused(model)
    plain = _run(model, x, dy)
    for h in handles:
        h.remove()
    # atol: the bias gradient of a BatchNorm whose output is normalized again downstream is 0 up
    # to rounding (~1e-5 of the model's gradients); its relative error is noise
    scale = max(float(np.abs(g).max()) for g in plain[2:])
    for i, (a, b) in enumerate(zip(fused, plain)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=1e-4 * scale, err_msg=f"fused vs unfused, item {i}")


@pytest.mark.parametrize("eo_act,torch_act", ACTS)
def test_conv_bn_act_fused_matches_torch(eo_act, torch_act, rng):
    # no conv bias: before a BatchNorm its gradient is 0 up to rounding, a relative error of noise
    e = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), eo_act())
    t = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch_act())
    with torch.no_grad():  # BN outputs on both sides of every kink (relu6 at 6, hardswish at +-3)
        t[1].weight.mul_(4.0)
        t[1].bias.uniform_(-2.0, 2.0)
    x = _randn(rng, 4, 3, 9, 7)
    e.train()
    e(x)
    assert _fused(e[2])
    compare_layer(e, t, x)
    compare_layer(e, t, x, train=False, copy_weights=False)  # eval: running stats, unfused
    assert not _fused(e[2])


@pytest.mark.parametrize("eo_act,torch_act", [(None, None), (nn.ReLU, torch.nn.ReLU), (nn.ReLU6, torch.nn.ReLU6)])
def test_residual_add_fused_matches_torch(eo_act, torch_act, rng):
    def block(lib, act):
        body = lib.Sequential(lib.Conv2d(6, 12, 1, bias=False), lib.BatchNorm2d(12), lib.ReLU6(),
                              lib.Conv2d(12, 12, 3, padding=1, groups=12, bias=False),
                              lib.BatchNorm2d(12), lib.ReLU6(),
                              lib.Sequential(lib.Conv2d(12, 6, 1, bias=False), lib.BatchNorm2d(6)))
        return body, None, (None if act is None else act())

    class TorchResidual(torch.nn.Module):
        def __init__(self, body, shortcut, act):
            super().__init__()
            self.body, self.activation = body, act

        def forward(self, x):
            y = self.body(x) + x
            return y if self.activation is None else self.activation(y)

    e = nn.ResidualBlock(*block(nn, eo_act))
    t = TorchResidual(*block(torch.nn, torch_act))
    x = _randn(rng, 3, 6, 8, 8, scale=2.0)
    assert e._fusable()
    # The first BatchNorm's weight gradient cancels to ~1e-4 of its terms (the BatchNorms after it
    # remove most of the gradient's correlation with its normalized input): float32 rounding
    # shows at 0.2-0.5 % there, fused or not (measured); everything else agrees to 1e-6.
    compare_layer(e, t, x, tol=1e-2)
    if eo_act is not None:
        e(x)
        assert _fused(e.activation)


def test_fused_equals_unfused_on_zoo_blocks(rng):
    from edgeopt import models
    for name, shape in (("mobilenet_v2", (2, 3, 16, 16)), ("resnet20", (2, 3, 12, 12)),
                        ("mobilenet_v3_small", (2, 3, 16, 16))):
        m = models.create(name, width_mult=0.5)
        m.train()
        # The fused and unfused passes round differently (FMA contraction in the ISA loops, lane
        # order of the sums); BatchNorm weight gradients that cancel to ~1e-4 of their terms show
        # it at a few 1e-4.
        _assert_same_as_unfused(m, _randn(rng, *shape), rng, tol=2e-3)


def test_hooks_turn_fusion_off(rng):
    seen = []
    e = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU6())
    e[2].register_forward_hook(lambda m, inp, out: seen.append(out.copy()))
    y = e(_randn(rng, 2, 3, 6, 6))
    assert len(seen) == 1 and not _fused(e[2])
    np.testing.assert_array_equal(seen[0], y)


def test_residual_with_hardswish_runs_unfused(rng):
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
    e = nn.ResidualBlock(body, activation=nn.HardSwish())
    assert not e._fusable()
    x = _randn(rng, 2, 4, 5, 5)
    y = e(x)
    handles = _unfused(e)
    np.testing.assert_array_equal(y, e(x))
    for h in handles:
        h.remove()
    with pytest.raises(ValueError, match="act: 'hardswish' cannot follow a residual"):
        F.batch_norm_train(x, np.ones(4, np.float32), np.zeros(4, np.float32), None, None,
                           act="hardswish", residual=x)
    with pytest.raises(ValueError, match="act: expected"):
        F.batch_norm_train(x, np.ones(4, np.float32), np.zeros(4, np.float32), None, None, act="gelu")
    with pytest.raises(ValueError, match="residual"):
        F.batch_norm_train(x, np.ones(4, np.float32), np.zeros(4, np.float32), None, None,
                           residual=x[:, :2])


def test_residual_shape_mismatch_names_the_block(rng):
    body = nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4))
    e = nn.ResidualBlock(body, activation=nn.ReLU())
    with pytest.raises(ValueError, match="ResidualBlock: body output shape"):
        e(_randn(rng, 2, 4, 6, 6))


def test_squeeze_excitation_fused_equals_unfused_with_pruned_weights(rng):
    se = nn.SqueezeExcitation(16, 8)
    for fc in (se.fc1, se.fc2):
        fc.weight.data *= 6.0
    prune_mask.set_mask(se.fc1, rng.random(se.fc1.weight.shape) > 0.5)
    assert se._fusable()
    _assert_same_as_unfused(se, _randn(rng, 3, 16, 5, 4, scale=2.0), rng)
    g = dict(se.named_parameters())["fc1.weight_orig"].grad
    assert np.all(g[se.fc1.weight_mask == 0] == 0)  # gradients reach weight_orig through the mask


def test_squeeze_excitation_bad_arguments(rng):
    x = _randn(rng, 2, 6, 3, 3)
    w1, w2 = _randn(rng, 3, 6), _randn(rng, 6, 3)
    with pytest.raises(ValueError, match="w1"):
        F.squeeze_excite(x, _randn(rng, 3, 5), None, w2, None)
    with pytest.raises(ValueError, match="w2"):
        F.squeeze_excite(x, w1, None, _randn(rng, 6, 4), None)
    with pytest.raises(ValueError, match="b1"):
        F.squeeze_excite(x, w1, _randn(rng, 4), w2, None)
    with pytest.raises(TypeError, match="x"):
        F.squeeze_excite(x.astype(np.float64), w1, None, w2, None)


def _bn_act_reference(x, gamma, beta, act, residual, dy):
    """float64 numpy: y = act(bn(x) + residual) and the gradients of sum(y * dy)."""
    x64 = x.astype(np.float64)
    mean = x64.mean((0, 2, 3), keepdims=True)
    var = x64.var((0, 2, 3), keepdims=True)
    xhat = (x64 - mean) / np.sqrt(var + 1e-5)
    u = xhat * gamma[None, :, None, None] + beta[None, :, None, None]
    if residual is not None:
        u = u + residual
    if act == "relu":
        y, du = np.maximum(u, 0), (u > 0)
    elif act == "relu6":
        y, du = np.clip(u, 0, 6), (u > 0) & (u < 6)
    elif act == "hardswish":
        y = u * np.clip(u + 3, 0, 6) / 6
        du = np.where(u <= -3, 0.0, np.where(u < 3, u / 3 + 0.5, 1.0))
    else:
        y, du = u, np.ones_like(u)
    g = dy * du
    m = x.shape[0] * x.shape[2] * x.shape[3]
    dgamma = (g * xhat).sum((0, 2, 3))
    dbeta = g.sum((0, 2, 3))
    dx = gamma[None, :, None, None] / np.sqrt(var + 1e-5) / m * (
        m * g - dbeta[None, :, None, None] - xhat * dgamma[None, :, None, None])
    return y, dx, dgamma, dbeta, g


@pytest.mark.parametrize("act,res", [("none", False), ("relu", False), ("relu6", False), ("hardswish", False),
                                     ("none", True), ("relu", True), ("relu6", True)])
# planes under 64 values run the flat loops, whose per-value sums fold every 128 images (260:
# twice); 45x100 planes run the vector loop past one fold with a remainder
@pytest.mark.parametrize("shape", [(4, 5, 7, 9), (2, 24, 4, 4), (3, 3, 2, 2), (2, 16, 16, 16), (260, 6, 4, 4),
                                   (2, 3, 45, 100)])
def test_fused_batchnorm_every_isa_matches_float64_reference(isa, act, res, shape, rng):
    x = _randn(rng, *shape, scale=3.0) + 1.0
    c = shape[1]
    gamma, beta = _randn(rng, c) * 2, _randn(rng, c)
    r = _randn(rng, *shape) if res else None
    dy = _randn(rng, *shape)
    y, m, s = F.batch_norm_train(x, gamma, beta, None, None, act=act, residual=r)
    dgamma, dbeta = np.zeros(c, np.float32), np.zeros(c, np.float32)
    out = F.batch_norm_backward(dy, x, gamma, m, s, dgamma, dbeta, beta, act, y if res else None, res)
    dx, dres = out if res else (out, None)
    want = _bn_act_reference(x, gamma, beta, act, r, dy)
    for name, got, ref in (("y", y, want[0]), ("dx", dx, want[1]), ("dgamma", dgamma, want[2]),
                           ("dbeta", dbeta, want[3])):
        assert_close(got, ref, f"{name} {act} residual={res} {isa}", 1e-4)
    if res:
        assert_close(dres if act != "none" else dy, want[4], f"dresidual {act} {isa}", 1e-4)


@pytest.mark.parametrize("act", ["none", "relu"])
def test_batchnorm_backward_of_an_empty_batch_is_empty(act):
    """Planes of no pixels (or no images): dx is empty and dgamma / dbeta gain nothing (the flat
    small-plane loops once divided by the plane size)."""
    for shape in ((2, 3, 0, 4), (0, 3, 2, 2)):
        x = np.zeros(shape, np.float32)
        dgamma, dbeta = np.full(3, 5, np.float32), np.full(3, 7, np.float32)
        dx = F.batch_norm_backward(x, x, np.ones(3, np.float32), np.zeros(3, np.float32),
                                   np.ones(3, np.float32), dgamma, dbeta, np.zeros(3, np.float32), act)
        assert dx.shape == shape
        np.testing.assert_array_equal(dgamma, 5)
        np.testing.assert_array_equal(dbeta, 7)

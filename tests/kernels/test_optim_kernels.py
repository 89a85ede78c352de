"""Optimizer steps of edgeopt._core (sgd_step, adam_step) against torch.optim on the same
parameters and gradients over several steps; NaN/Inf gradients leave everything untouched."""
import numpy as np
import pytest
import torch

import edgeopt as eo
from tolerances import TOL

C = eo._core
SHAPES = [(7,), (3, 5, 3, 3), (70001,)]  # the last one spans several parallel blocks


def grads(rng, shape, steps):
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]


def assert_close(got, want):
    # TOL["f32-elementwise"] (1e-6) relative to the tensor's scale: elements that are differences of O(1) terms (a momentum
    # buffer crossing zero) carry the O(1) terms' rounding, not their own.
    want = want.detach().numpy()
    np.testing.assert_allclose(got, want, rtol=TOL["f32-elementwise"].rtol, atol=TOL["f32-elementwise"].atol * float(np.abs(want).max()))


SGD_CONFIGS = [
    dict(momentum=0.0),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.8, dampening=0.3),
    dict(momentum=0.9, weight_decay=5e-2),
    dict(momentum=0.0, weight_decay=1e-2),
    dict(momentum=0.9, nesterov=True, weight_decay=1e-3),
]


@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=[str(c) for c in SGD_CONFIGS])
@pytest.mark.parametrize("shape", SHAPES)
def test_sgd_matches_torch(cfg, shape):
    rng = np.random.default_rng(len(shape) * 100 + len(str(cfg)))
    lr = 0.05
    p0 = rng.standard_normal(shape).astype(np.float32)
    pt = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = torch.optim.SGD([pt], lr=lr, **cfg)
    param = p0.copy()
    buf = np.zeros_like(param) if cfg["momentum"] else None
    for i, g in enumerate(grads(rng, shape, 5)):
        pt.grad = torch.from_numpy(g.copy())
        opt.step()
        ok = C.optim.sgd_step(param, g, buf, lr, cfg["momentum"], cfg.get("dampening", 0.0),
                        cfg.get("nesterov", False), cfg.get("weight_decay", 0.0), i == 0)
        assert ok is True
        assert_close(param, pt)
        if buf is not None:
            assert_close(buf, opt.state[pt]["momentum_buffer"])


ADAM_CONFIGS = [
    dict(),
    dict(betas=(0.8, 0.99), eps=1e-6),
    dict(weight_decay=1e-2),
    dict(weight_decay=1e-2, decoupled=True),
    dict(weight_decay=0.1, decoupled=True, betas=(0.5, 0.9)),
    dict(betas=(0.0, 0.5)),  # lerp weight 1 >= 0.5 takes the other branch of torch.lerp
]


@pytest.mark.parametrize("cfg", ADAM_CONFIGS, ids=[str(c) for c in ADAM_CONFIGS])
@pytest.mark.parametrize("shape", SHAPES)
def test_adam_matches_torch(cfg, shape):
    rng = np.random.default_rng(len(shape) * 100 + len(str(cfg)))
    lr = 1e-2
    cfg = dict(cfg)
    decoupled = cfg.pop("decoupled", False)
    p0 = rng.standard_normal(shape).astype(np.float32)
    pt = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([pt], lr=lr, **cfg)
    cfg.setdefault("weight_decay", 0.0)  # torch.optim.AdamW defaults to 1e-2; all set explicitly here
    beta1, beta2 = cfg.get("betas", (0.9, 0.999))
    param, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for step, g in enumerate(grads(rng, shape, 6), start=1):
        pt.grad = torch.from_numpy(g.copy())
        opt.step()
        ok = C.optim.adam_step(param, g, m, v, step, lr, beta1, beta2, cfg.get("eps", 1e-8),
                         cfg["weight_decay"], decoupled)
        assert ok is True
        assert_close(param, pt)
        assert_close(m, opt.state[pt]["exp_avg"])
        assert_close(v, opt.state[pt]["exp_avg_sq"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_leaves_everything_untouched(bad):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(100003).astype(np.float32)
    g = rng.standard_normal(param.shape).astype(np.float32)
    g[99000] = bad  # in the last parallel block
    buf, m, v = (rng.standard_normal(param.shape).astype(np.float32) for _ in range(3))
    v = np.abs(v)
    before = [a.copy() for a in (param, buf, m, v)]
    assert C.optim.sgd_step(param, g, buf, 0.1, 0.9, 0.0, False, 1e-4, False) is False
    assert C.optim.sgd_step(param, g, buf, 0.1, 0.9, 0.0, False, 1e-4, True) is False
    assert C.optim.adam_step(param, g, m, v, 3, 1e-3, 0.9, 0.999, 1e-8, 0.0, False) is False
    assert C.optim.adam_step(param, g, m, v, 3, 1e-3, 0.9, 0.999, 1e-8, 0.1, True) is False
    for a, b in zip((param, buf, m, v), before):
        np.testing.assert_array_equal(a, b)


def test_empty_parameter_is_a_no_op():
    e = np.zeros((0, 3), np.float32)
    assert C.optim.sgd_step(e, e.copy(), e.copy(), 0.1, 0.9, 0.0, False, 0.0, True) is True
    assert C.optim.adam_step(e, e.copy(), e.copy(), e.copy(), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False) is True


def test_sgd_bad_input():
    p, g = np.ones((3, 4), np.float32), np.ones((3, 4), np.float32)
    buf = np.zeros_like(p)
    with pytest.raises(TypeError, match="param: expected dtype float32, got float64"):
        C.optim.sgd_step(p.astype(np.float64), g, buf, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(TypeError, match="grad: expected dtype float32, got int64"):
        C.optim.sgd_step(p, g.astype(np.int64), buf, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(TypeError, match="param: expected a numpy.ndarray"):
        C.optim.sgd_step([1.0], g, buf, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match="grad: expected the shape of param \\(3, 4\\), got \\(4, 3\\)"):
        C.optim.sgd_step(p, g.reshape(4, 3), buf, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match="momentum_buf: expected the shape of param"):
        C.optim.sgd_step(p, g, buf[:2].copy(), 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match="momentum_buf: required when momentum != 0"):
        C.optim.sgd_step(p, g, None, 0.1, 0.9, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.optim.sgd_step(p.T, g.T, None, 0.1, 0.0, 0.0, False, 0.0, True)
    with pytest.raises(ValueError, match="read-only"):
        ro = p.copy()
        ro.flags.writeable = False
        C.optim.sgd_step(ro, g, None, 0.1, 0.0, 0.0, False, 0.0, True)
    for name, args in [("lr", (-0.1, 0.9, 0.0, False, 0.0)), ("lr", (float("nan"), 0.9, 0.0, False, 0.0)),
                       ("momentum", (0.1, -0.9, 0.0, False, 0.0)),
                       ("weight_decay", (0.1, 0.9, 0.0, False, -1.0)),
                       ("nesterov", (0.1, 0.9, 0.5, True, 0.0)), ("nesterov", (0.1, 0.0, 0.0, True, 0.0))]:
        with pytest.raises(ValueError, match=name):
            C.optim.sgd_step(p, g, buf, *args, True)
    # momentum == 0 needs no buffer
    assert C.optim.sgd_step(p, g, None, 0.1, 0.0, 0.0, False, 0.0, True) is True


def test_adam_bad_input():
    p = np.ones(5, np.float32)
    g, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    with pytest.raises(TypeError, match="exp_avg: expected dtype float32"):
        C.optim.adam_step(p, g, m.astype(np.float64), v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match="exp_avg_sq: expected the shape of param \\(5,\\), got \\(4,\\)"):
        C.optim.adam_step(p, g, m, v[:4].copy(), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match="grad: expected the shape of param"):
        C.optim.adam_step(p, g.reshape(5, 1), m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match="step: expected the 1-based step count >= 1, got 0"):
        C.optim.adam_step(p, g, m, v, 0, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    for name, args in [("lr", (-1e-3, 0.9, 0.999, 1e-8, 0.0)), ("beta1", (1e-3, 1.0, 0.999, 1e-8, 0.0)),
                       ("beta2", (1e-3, 0.9, -0.1, 1e-8, 0.0)), ("eps", (1e-3, 0.9, 0.999, -1.0, 0.0)),
                       ("weight_decay", (1e-3, 0.9, 0.999, 1e-8, float("nan")))]:
        with pytest.raises(ValueError, match=name):
            C.optim.adam_step(p, g, m, v, 1, *args, False)
    np.testing.assert_array_equal(p, 1.0)  # nothing above touched param

"""Optimizers and learning-rate schedules against torch.optim."""
import warnings

import numpy as np
import pytest
import torch
from torch_oracle import assert_close

import edgeopt as eo
from edgeopt import nn, optim
from tolerances import TOL


def make_params(rng, shapes=((4, 3), (5,), (2, 3, 3, 3))):
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    return [nn.Parameter(a) for a in arrays], [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]


def run_both(rng, make_eo, make_torch, steps=6):
    ps, ts = make_params(rng)
    opt, topt = make_eo(ps), make_torch(ts)
    for _ in range(steps):
        opt.zero_grad()
        topt.zero_grad()
        for p, t in zip(ps, ts):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad += g
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for i, (p, t) in enumerate(zip(ps, ts)):
            assert_close(p.data, t.detach(), f"param {i}", tol=TOL["f32-op"].rtol)  # one optimizer step: element-wise, tighter than a layer
    return opt, ps


SGD_CASES = [dict(lr=0.1, momentum=0.0), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
             dict(lr=0.1, momentum=0.5, dampening=0.3), dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
             dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_matches_torch(kw, rng):
    run_both(rng, lambda p: optim.SGD(p, **kw), lambda t: torch.optim.SGD(t, **kw))


def test_sgd_default_momentum_is_0_9(rng):
    run_both(rng, lambda p: optim.SGD(p, lr=0.01), lambda t: torch.optim.SGD(t, lr=0.01, momentum=0.9))


ADAM_CASES = [dict(), dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6), dict(lr=1e-2, weight_decay=1e-2)]


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_matches_torch(kw, rng):
    run_both(rng, lambda p: optim.Adam(p, **kw), lambda t: torch.optim.Adam(t, **kw))


@pytest.mark.parametrize("kw", [dict(), dict(lr=1e-2, weight_decay=0.1)])
def test_adamw_matches_torch(kw, rng):
    run_both(rng, lambda p: optim.AdamW(p, **kw), lambda t: torch.optim.AdamW(t, **kw))
    run_both(rng, lambda p: optim.Adam(p, decoupled=True, weight_decay=kw.get("weight_decay", 1e-2),
                                       lr=kw.get("lr", 1e-3)),
             lambda t: torch.optim.AdamW(t, **kw))


def test_param_groups(rng):
    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5, "momentum": 0.0}]
    run_both(rng, lambda p: optim.SGD(groups(p), lr=0.1), lambda t: torch.optim.SGD(groups(t), lr=0.1, momentum=0.9))


def test_frozen_parameter_is_skipped(rng):
    ps, _ = make_params(rng)
    ps[0].requires_grad = False
    before = ps[0].data.copy()
    ps[0].grad += 1
    ps[1].grad += 1
    optim.SGD(ps, lr=0.1).step()
    np.testing.assert_array_equal(ps[0].data, before)


def test_nan_gradient_raises_naming_the_parameter(rng):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    for make in (lambda p: optim.SGD(p, lr=0.1), lambda p: optim.Adam(p)):
        opt = make(model.named_parameters())
        model.zero_grad()
        model[2].weight.grad[0, 1] = np.nan
        before = model[2].weight.data.copy()
        with pytest.raises(ValueError, match=r"gradient of parameter '2.weight' contains NaN or Inf"):
            opt.step()
        np.testing.assert_array_equal(model[2].weight.data, before)
        model[2].weight.grad[0, 1] = np.inf
        with pytest.raises(ValueError, match="'2.weight'"):
            opt.step()
    # Unnamed parameters are named by position and shape.
    p = nn.Parameter(np.zeros(3, np.float32))
    p.grad[0] = np.nan
    with pytest.raises(ValueError, match=r"'#0 \(3,\)'"):
        optim.SGD([p], lr=0.1).step()


def test_nan_step_then_recovery_keeps_first_step_semantics(rng):
    ps, ts = make_params(rng, shapes=((6,),))
    opt, topt = optim.SGD(ps, lr=0.1, momentum=0.9), torch.optim.SGD(ts, lr=0.1, momentum=0.9)
    ps[0].grad[0] = np.nan
    with pytest.raises(ValueError):
        opt.step()
    g = rng.standard_normal(6).astype(np.float32)
    ps[0].grad[...] = g
    ts[0].grad = torch.from_numpy(g.copy())
    opt.step()
    topt.step()
    assert_close(ps[0].data, ts[0].detach(), "after recovering from a NaN step")


def test_bad_hyperparameters():
    p = [nn.Parameter(np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([p[0], p[0]], lr=0.1)


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1), lambda p: optim.Adam(p, lr=1e-2)])
def test_optimizer_state_dict_round_trip(make, rng):
    ps, _ = make_params(rng)
    opt = make(ps)
    for _ in range(2):
        for p in ps:
            p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2] and sd["param_groups"][0]["params"] == [0, 1, 2]
    clones = [nn.Parameter(p.data.copy()) for p in ps]
    opt2 = make(clones)
    opt2.load_state_dict(sd)
    for p, c in zip(ps, clones):
        g = rng.standard_normal(p.shape).astype(np.float32)
        p.grad[...] = g
        c.grad[...] = g
    opt.step()
    opt2.step()
    for p, c in zip(ps, clones):
        np.testing.assert_array_equal(p.data, c.data)


def test_training_engine_adam_vs_torch(rng):
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    tmodel = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()})
    opt, topt = optim.Adam(model.named_parameters(), lr=1e-2), torch.optim.Adam(tmodel.parameters(), lr=1e-2)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    for _ in range(5):
        opt.zero_grad()
        loss, dl = nn.functional.cross_entropy(model(x), y)
        model.backward(dl)
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert abs(loss - tloss.item()) <= 1e-4 * abs(tloss.item())


# ------------------------------------------------------------------ schedules
def schedule_pair(make_eo, make_torch, lr=0.1, momentum=0.9):
    p = nn.Parameter(np.zeros(1, np.float32))
    t = torch.nn.Parameter(torch.zeros(1))
    opt, topt = optim.SGD([p], lr=lr, momentum=momentum), torch.optim.SGD([t], lr=lr, momentum=momentum)
    return opt, make_eo(opt), topt, make_torch(topt)


def compare_schedules(make_eo, make_torch, epochs=25):
    opt, s, topt, ts = schedule_pair(make_eo, make_torch)
    for epoch in range(epochs):
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-6, abs=1e-12), epoch
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-6, abs=1e-12)
        opt.step()
        topt.step()
        s.step()
        ts.step()


def test_step_lr():
    compare_schedules(lambda o: optim.StepLR(o, 7, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5))


def test_multistep_lr():
    compare_schedules(lambda o: optim.MultiStepLR(o, [3, 10, 11], 0.3),
                      lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 10, 11], 0.3))


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing(eta_min):
    compare_schedules(lambda o: optim.CosineAnnealingLR(o, 10, eta_min),
                      lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, eta_min), epochs=30)


def _torch_warmup(o, warmup, after=None, start=None):
    start = 1.0 / warmup if start is None else start
    lin = torch.optim.lr_scheduler.LinearLR(o, start_factor=start, end_factor=1.0, total_iters=warmup)
    if after is None:
        return lin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.optim.lr_scheduler.SequentialLR(o, [lin, after(o)], milestones=[warmup])


def test_linear_warmup_alone():
    compare_schedules(lambda o: optim.LinearWarmup(o, 5), lambda o: _torch_warmup(o, 5), epochs=10)
    compare_schedules(lambda o: optim.LinearWarmup(o, 4, start_factor=0.25), lambda o: _torch_warmup(o, 4, start=0.25))


def test_linear_warmup_then_cosine():
    compare_schedules(lambda o: optim.LinearWarmup(o, 5, after=optim.CosineAnnealingLR(o, 15)),
                      lambda o: _torch_warmup(o, 5, lambda o2: torch.optim.lr_scheduler.CosineAnnealingLR(o2, 15)),
                      epochs=25)


def test_schedule_state_dict():
    opt, s, _, _ = schedule_pair(lambda o: optim.LinearWarmup(o, 3, after=optim.StepLR(o, 2)), lambda o: None)
    for _ in range(6):
        s.step()
    sd = s.state_dict()
    opt2, s2, _, _ = schedule_pair(lambda o: optim.LinearWarmup(o, 3, after=optim.StepLR(o, 2)), lambda o: None)
    s2.load_state_dict(sd)
    s.step()
    s2.step()
    assert s.get_last_lr() == s2.get_last_lr()
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.LinearWarmup(opt, 0)
    with pytest.raises(TypeError, match="optimizer"):
        optim.StepLR(object(), 3)


def test_manual_seed_validation():
    with pytest.raises(TypeError):
        eo.manual_seed(1.5)
    with pytest.raises(ValueError):
        eo.manual_seed(-1)
    eo.manual_seed(11)
    assert eo.random.initial_seed() == 11


def test_lr_property_sets_every_group(rng):
    ps, _ = make_params(rng)
    opt = optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = 0.02
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.02]
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert "SGD" in repr(opt) and "lr: 0.02" in repr(opt)


def test_optimizers_work_after_pickle(rng):
    import pickle

    ps, _ = make_params(rng)
    for make in (lambda p: optim.SGD(p, lr=0.1), lambda p: optim.Adam(p)):
        clones = pickle.loads(pickle.dumps(ps))
        for c in clones:
            c.grad[...] = 1.0
        make(clones).step()

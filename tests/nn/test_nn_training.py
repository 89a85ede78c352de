"""A small CNN trained for a few SGD steps in edgeopt and in PyTorch gives the same losses."""
import numpy as np
import pytest
import torch
from torch_oracle import assert_close, torch_state_to_numpy

from edgeopt import nn, optim
from edgeopt.nn import functional as F


def build(lib, act):
    return lib.Sequential(lib.Conv2d(3, 8, 3, padding=1, bias=False), lib.BatchNorm2d(8), act(lib),
                          lib.MaxPool2d(2), lib.Conv2d(8, 16, 3, stride=2, padding=1), lib.BatchNorm2d(16),
                          act(lib), lib.AvgPool2d(2), lib.Flatten(), lib.Linear(16 * 2 * 2, 10))


@pytest.mark.parametrize("act", [lambda lib: lib.ReLU(), lambda lib: lib.Hardswish()], ids=["relu", "hardswish"])
def test_sgd_training_matches_torch(act, rng):
    t = build(torch.nn, act)
    e = build(nn, act)
    e.load_state_dict(torch_state_to_numpy(t))
    opt = optim.SGD(e.named_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    topt = torch.optim.SGD(t.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched, tsched = optim.StepLR(opt, 3, 0.5), torch.optim.lr_scheduler.StepLR(topt, 3, 0.5)
    x = rng.standard_normal((32, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    losses, tlosses = [], []
    for step in range(8):
        xb, yb = x[step % 2 * 16:][:16], y[step % 2 * 16:][:16]
        e.train()
        opt.zero_grad()
        loss, dlogits = F.cross_entropy(e(xb), yb, label_smoothing=0.1)
        e.backward(dlogits)
        opt.step()
        sched.step()
        t.train()
        topt.zero_grad()
        tl = torch.nn.functional.cross_entropy(t(torch.from_numpy(xb)), torch.from_numpy(yb), label_smoothing=0.1)
        tl.backward()
        topt.step()
        tsched.step()
        losses.append(loss)
        tlosses.append(tl.item())
    np.testing.assert_allclose(losses, tlosses, rtol=1e-4)
    assert losses[-1] < losses[0]
    e.eval()
    t.eval()
    with torch.no_grad():
        assert_close(e(x), t(torch.from_numpy(x)), "eval logits after training", tol=1e-3)
    for name, value in e.state_dict().items():
        assert_close(value, t.state_dict()[name], f"trained {name}", tol=1e-3)

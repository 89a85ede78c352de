"""fit's custom loss and callbacks (train/callbacks.py): the loss is what trains the model, hooks
run in order with the documented arguments, a stateful callback survives checkpoint / resume, the
lr per step comes from optim.lr_scheduler with the values fit always had, and a raising callback or
a bad loss leaves the model and the checkpoint as the guard would."""
import math
import shutil

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import nn
from edgeopt.train import Batch, Callback, CallbackError

K = 4
NORM = {"mean": [0.5], "std": [0.25]}


def tiny():
    eo.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, K))


def linear():
    eo.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, K))


@pytest.fixture(scope="module")
def data():
    tr, te = eo.data.synthetic(num_classes=K, shape=(1, 8, 8), n_train=128, n_test=64)
    as_float = lambda d: eo.data.Dataset(d.x.astype(np.float32) / 255, d.y)  # noqa: E731
    return as_float(tr), as_float(te)


def fit(model, train, **kw):
    args = dict(epochs=1, batch_size=32, lr=0.05, progress=False)
    args.update(kw)
    return eo.train.fit(model, train, **args)


def assert_same(a: dict, b: dict):
    assert list(a) == list(b)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), f"{k} differs"


def cross_entropy_to(label):
    """A loss that ignores the labels and pushes every sample towards `label`."""
    return lambda logits, labels, batch: eo._core.layers.cross_entropy(logits, np.full_like(labels, label), 0.0)


# ---------------------------------------------------------------------------- the loss
def test_custom_loss_is_what_trains_the_model(data):
    train, test = data
    predicted = {}
    for name, loss in (("default", None), ("to class 2", cross_entropy_to(2))):
        model = tiny()
        fit(model, train, epochs=3, lr=0.1, loss=loss)
        predicted[name] = eo.train.evaluate(model, eo.data.Dataset(test.x, np.full_like(test.y, 2)))["acc"]
    assert predicted["to class 2"] == 1.0
    assert predicted["default"] < 0.5  # the synthetic classes are balanced


def test_custom_loss_gradient_is_the_update(data):
    # one SGD step without momentum or weight decay on a linear model: W -= lr * dlogits^T x
    train, _ = data
    model = linear()
    w0, b0 = model[1].weight.data.copy(), model[1].bias.data.copy()
    seen = {}

    def loss(logits, labels, batch):
        assert isinstance(batch, Batch) and (batch.epoch, batch.step) == (0, 0)
        np.testing.assert_array_equal(batch.y, labels)
        if not seen:  # (the end-of-epoch check runs the batch again, on the updated weights)
            # batch.x is what the model saw: its logits are x W^T + b
            np.testing.assert_allclose(logits, batch.x.reshape(len(labels), -1) @ w0.T + b0, rtol=1e-5, atol=1e-5)
            seen["x"] = batch.x.reshape(len(labels), -1).copy()
            seen["d"] = np.cos(logits) / len(labels)  # any gradient will do; not cross-entropy's
        return float(np.sin(logits).sum() / len(labels)), np.cos(logits) / len(labels)

    h = fit(model, train, batch_size=len(train), lr=0.5, schedule="constant", momentum=0.0, weight_decay=0.0,
            loss=loss)
    np.testing.assert_allclose(model[1].weight.data, w0 - 0.5 * seen["d"].T @ seen["x"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model[1].bias.data, b0 - 0.5 * seen["d"].sum(0), rtol=1e-5, atol=1e-6)
    assert h.train_loss[0] == pytest.approx(float(np.sin(seen["x"] @ w0.T + b0).sum() / len(train)), rel=1e-5)


@pytest.mark.parametrize("bad, match", [
    (lambda z, y, b: (float("nan"), np.zeros_like(z)), r"the loss is NaN"),
    (lambda z, y, b: (0.0, np.full_like(z, np.inf)), r"the loss gradient dlogits holds inf at index \(0, 0\)"),
])
def test_nonfinite_custom_loss_is_caught_by_the_guard(data, bad, match):
    train, _ = data
    model = tiny()
    model.input_norm = NORM
    before = model.state_dict()
    with pytest.raises(FloatingPointError, match=r"^training diverged at epoch 1, step 0: " + match):
        fit(model, train, loss=bad)
    assert_same(model.state_dict(), before)


@pytest.mark.parametrize("bad, exc, match", [
    (lambda z, y, b: 1.0, TypeError, r"^loss: expected loss\(logits, labels, batch\) to return \(loss, dlogits\), "
                                     r"got float"),
    (lambda z, y, b: ("1.0", z), TypeError, r"^loss: expected the loss to be a number, got str"),
    (lambda z, y, b: (1.0, z[:, :2]), ValueError, r"^loss: expected dlogits as a float array of the logits' "
                                                  r"shape \(32, 4\), got shape \(32, 2\)"),
    (lambda z, y, b: (1.0, z.tolist()), TypeError, r"^loss: expected dlogits .* got list"),
    (lambda z, y, b: (1.0, z.astype(np.int32)), ValueError, r"^loss: expected dlogits .* dtype int32"),
])
def test_bad_loss_output_names_the_loss_and_changes_nothing(data, bad, exc, match):
    train, _ = data
    model = tiny()
    model.input_norm = NORM
    before = model.state_dict()
    with pytest.raises(exc, match=match):
        fit(model, train, loss=bad)
    assert_same(model.state_dict(), before)


# ---------------------------------------------------------------------------- hooks
class Log(Callback):
    """Every hook call with a summary of its arguments."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, model, optimizer, total_steps):
        self.model, self.opt = model, optimizer
        self.calls.append(("train_begin", total_steps))

    def on_epoch_begin(self, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_step_begin(self, batch):
        self.calls.append(("step_begin", batch.epoch, batch.step, batch.x.shape, self.opt.lr))

    def on_step_end(self, batch, loss, logits):
        assert isinstance(loss, float) and logits.shape == (len(batch.y), K)
        self.calls.append(("step_end", batch.epoch, batch.step, loss, logits.argmax(1).tolist(), batch.y.tolist()))

    def on_epoch_end(self, epoch, metrics):
        self.calls.append(("epoch_end", epoch, metrics))

    def on_train_end(self, history):
        self.calls.append(("train_end", history, self.model.training))


def test_hooks_run_in_order_with_their_arguments(data):
    train, test = data
    a, b = Log(), Log()
    order = []
    a.on_epoch_begin = lambda epoch: order.append(("a", epoch))
    b.on_epoch_begin = lambda epoch: order.append(("b", epoch))
    model = tiny()
    h = fit(model, train.subset(np.arange(96)), val=test, epochs=2, schedule="constant", callbacks=(a, b))
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert a.model is model and isinstance(a.opt, eo.optim.SGD)
    kinds = [c[0] for c in a.calls]
    steps = ["step_begin", "step_end"] * 3
    assert kinds == ["train_begin"] + steps + ["epoch_end"] + steps + ["epoch_end", "train_end"]
    assert a.calls[0] == ("train_begin", 6)
    begins = [c for c in a.calls if c[0] == "step_begin"]
    assert [(c[1], c[2]) for c in begins] == [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]
    assert all(c[3] == (32, 1, 8, 8) and c[4] == 0.05 for c in begins)
    ends = [c for c in a.calls if c[0] == "step_end"]
    for e in range(2):  # the epoch's loss and accuracy are those of its steps
        mine = ends[3 * e:3 * e + 3]
        assert h.train_loss[e] == pytest.approx(np.mean([c[3] for c in mine]), rel=1e-12)
        hits = sum(p == y for c in mine for p, y in zip(c[4], c[5]))
        assert h.train_acc[e] == hits / 96
    metrics = [c for c in a.calls if c[0] == "epoch_end"]
    assert [c[1] for c in metrics] == [0, 1]
    for e, (_, _, m) in enumerate(metrics):
        assert m == {k: v[e] for k, v in h.as_dict().items() if k != "epoch"}
    assert a.calls[-1] == ("train_end", h, False)
    assert b.calls == a.calls[:1] + b.calls[1:] and len(b.calls) == len(a.calls)


# ---------------------------------------------------------------------------- state across resume
class AdaptiveLR(Callback):
    """Scales each step's lr by a factor that follows the loss: training depends on its state."""

    def __init__(self):
        self.scale, self.losses = 1.0, []

    def on_train_begin(self, model, optimizer, total_steps):
        self.opt = optimizer

    def on_step_begin(self, batch):
        self.opt.lr = self.opt.lr * self.scale

    def on_step_end(self, batch, loss, logits):
        self.scale = 0.5 * self.scale + 0.5 / (1.0 + loss)
        self.losses.append(loss)

    def state_dict(self):
        return {"scale": self.scale, "losses": np.array(self.losses), "meta": {"kind": "adaptive", "k": [1, None]}}

    def load_state_dict(self, state):
        assert state["meta"] == {"kind": "adaptive", "k": [1, None]}
        self.scale, self.losses = state["scale"], state["losses"].tolist()


class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, batch, loss, logits):
        if batch.step == self.at:
            raise KeyboardInterrupt


def test_stateful_callback_resumes_as_if_uninterrupted(data, tmp_path):
    train, test = data
    run = dict(epochs=2, val=test, seed=4)
    full, cb_full = tiny(), AdaptiveLR()
    h_full = fit(full, train, callbacks=[cb_full], **run)

    ckpt = str(tmp_path / "run.npz")
    with pytest.raises(KeyboardInterrupt):  # in epoch 2 (4 steps per epoch)
        fit(tiny(), train, checkpoint=ckpt, callbacks=[AdaptiveLR(), Interrupt(at=5)], **run)
    shutil.copy(ckpt, tmp_path / "copy.npz")
    resumed, cb = tiny(), AdaptiveLR()
    h_res = fit(resumed, train, checkpoint=ckpt, resume=True, callbacks=[cb], **run)
    assert h_res.train_loss == h_full.train_loss and h_res.val_acc == h_full.val_acc
    assert_same(resumed.state_dict(), full.state_dict())
    assert cb.scale == cb_full.scale and cb.losses == cb_full.losses

    forgetful = AdaptiveLR()  # the same run, the callback's state not restored: a different result
    forgetful.load_state_dict = lambda state: None
    other = tiny()
    fit(other, train, checkpoint=str(tmp_path / "copy.npz"), resume=True, callbacks=[forgetful], **run)
    assert other[5].weight.data.tobytes() != full[5].weight.data.tobytes()


def test_resume_without_a_stateful_callback_is_refused(data, tmp_path):
    train, _ = data
    ckpt = str(tmp_path / "run.npz")
    fit(tiny(), train, checkpoint=ckpt, callbacks=[Log(), AdaptiveLR()])
    model = tiny()
    with pytest.raises(ValueError, match=r"^callbacks: checkpoint .* holds the state of 1 AdaptiveLR callback\(s\), "
                                         r"got 0"):
        fit(model, train, epochs=2, checkpoint=ckpt, resume=True)
    fit(model, train, epochs=2, checkpoint=ckpt, resume=True, callbacks=[AdaptiveLR()])  # Log() has no state


def test_a_state_the_checkpoint_cannot_hold_is_refused_before_writing(data, tmp_path):
    class Bad(Callback):
        def state_dict(self):
            return {"ok": 1, "nested": {3: "int key"}}

    ckpt = tmp_path / "run.npz"
    with pytest.raises(ValueError, match=r"^callbacks\[0\] \(Bad\)\.state_dict\(\): key 3 at \['nested'\]"):
        fit(tiny(), data[0], checkpoint=str(ckpt), callbacks=[Bad()])
    assert not ckpt.exists()


# ---------------------------------------------------------------------------- learning rates
def old_lr(schedule, base, step, total, warmup):
    """fit's schedules as they were written before they moved to optim.lr_scheduler."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * base * (1 + math.cos(math.pi * t))
    if schedule == "step":
        return base * (0.1 ** ((t >= 0.5) + (t >= 0.75)))
    return base


class Lrs(Callback):
    def on_train_begin(self, model, optimizer, total_steps):
        self.opt, self.lrs = optimizer, []

    def on_step_begin(self, batch):
        self.lrs.append(self.opt.lr)


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
@pytest.mark.parametrize("epochs, warmup_epochs", [(3, 0.0), (3, 1.5), (2, 0.125), (2, 3.0), (5, 0.5)])
def test_lr_per_step_is_the_old_formula(data, schedule, epochs, warmup_epochs):
    train, _ = data
    rec = Lrs()
    h = fit(linear(), train, batch_size=16, lr=0.3, epochs=epochs, schedule=schedule, warmup_epochs=warmup_epochs,
            callbacks=[rec])
    total, warmup = epochs * 8, int(warmup_epochs * 8)
    want = [old_lr(schedule, 0.3, s, total, warmup) for s in range(total)]
    assert rec.lrs == want  # bit for bit
    assert h.lr == want[7::8]


def test_inclusive_warmup_fixes_its_start():
    opt = eo.optim.SGD([nn.Parameter(np.zeros(1, np.float32))], lr=1.0)
    with pytest.raises(ValueError, match=r"^start_factor: inclusive=True ramps from 1/warmup_steps, got 0.5"):
        eo.optim.LinearWarmup(opt, 4, start_factor=0.5, inclusive=True)
    with pytest.raises(TypeError, match=r"^inclusive"):
        eo.optim.LinearWarmup(opt, 4, inclusive="yes")


# ---------------------------------------------------------------------------- a callback that raises
class Boom(Callback):
    def __init__(self, hook, step=None):
        self.hook, self.step = hook, step

    def on_step_end(self, batch, loss, logits):
        if self.hook == "on_step_end" and batch.step == self.step:
            raise RuntimeError("boom")

    def on_epoch_end(self, epoch, metrics):
        if self.hook == "on_epoch_end":
            raise RuntimeError("boom")


class States(Callback):
    def __init__(self, model):
        self.model, self.after = model, {}

    def on_step_end(self, batch, loss, logits):
        self.after[batch.step] = self.model.state_dict()


def test_a_raising_step_hook_undoes_its_step_and_keeps_the_checkpoint(data, tmp_path):
    train, test = data
    model = tiny()
    ckpt = tmp_path / "run.npz"
    fit(model, train, checkpoint=str(ckpt))
    saved = ckpt.read_bytes()
    rec = States(model)
    with pytest.raises(CallbackError, match=r"^callbacks\[1\] \(Boom\)\.on_step_end raised RuntimeError: boom$") as e:
        fit(model, train, epochs=2, checkpoint=str(ckpt), resume=True, callbacks=[rec, Boom("on_step_end", 6)])
    assert isinstance(e.value.__cause__, RuntimeError)
    assert sorted(rec.after) == [4, 5, 6]  # step 6 went through rec, then Boom refused it
    assert_same(model.state_dict(), rec.after[5])
    assert ckpt.read_bytes() == saved
    assert np.isfinite(eo.train.evaluate(model, test)["loss"])


def test_a_raising_epoch_end_writes_no_checkpoint_for_that_epoch(data, tmp_path):
    train, _ = data
    model = tiny()
    rec = States(model)
    ckpt = tmp_path / "run.npz"
    with pytest.raises(CallbackError, match=r"^callbacks\[1\] \(Boom\)\.on_epoch_end raised RuntimeError: boom$"):
        fit(model, train, checkpoint=str(ckpt), callbacks=[rec, Boom("on_epoch_end")])
    assert not ckpt.exists()
    assert_same(model.state_dict(), rec.after[3])  # the epoch's training is kept in the model

"""fit guards the model (train/fit.py, train/guard.py): bad data is reported before any training,
and a step that produces a non-finite value stops training with "training diverged ... lower lr or
check the data" and leaves the model bit-identical to its last good state (the one the message
names), able to evaluate, with any checkpoint of an earlier epoch intact.

References are copies taken here: the state before fit and after every step (a callback)."""
import re

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import nn
from edgeopt.train.checkpoint import load_checkpoint
from edgeopt.train.guard import Diverged, StepGuard

BATCH = 32
NORM = {"mean": [0.5], "std": [0.25]}   # set up front, as when fine-tuning


def tiny(k=4):
    eo.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, k))


@pytest.fixture(scope="module")
def data():
    tr, te = eo.data.synthetic(num_classes=4, shape=(1, 8, 8), n_train=256, n_test=64)
    as_float = lambda d: eo.data.Dataset(d.x.astype(np.float32) / 255, d.y)  # noqa: E731
    return as_float(tr), as_float(te)


def with_x(ds, index, value):
    x = ds.x.copy()
    x[index] = value
    return eo.data.Dataset(x, ds.y)


def with_label(ds, i, label):
    y = ds.y.copy()
    y[i] = label
    return eo.data.Dataset(ds.x, y)


def assert_same(a: dict, b: dict):
    """Bit-identical state dicts."""
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), f"{k} differs"


class Recorder(eo.train.Callback):
    """Keeps the model's state after every global step."""

    def __init__(self, model):
        self.model, self.start, self.after = model, model.state_dict(), {}

    def on_step_end(self, batch, loss, logits):
        self.after[batch.step] = self.model.state_dict()

    def state_before(self, step):
        return self.after[step - 1] if step - 1 in self.after else self.start

    def restored_state(self, message, steps_per_epoch):
        """The state fit's message says it went back to."""
        epoch, i = map(int, re.search(r"training diverged at epoch (\d+), step (\d+)", message).groups())
        first = (epoch - 1) * steps_per_epoch
        return self.state_before(first if "at the start of the epoch" in message else first + i)


class Steps(eo.train.Callback):
    """Records the global step of every step that went through."""

    def __init__(self):
        self.steps = []

    def on_step_end(self, batch, loss, logits):
        self.steps.append(batch.step)


def fit(model, train, **kw):
    args = dict(epochs=1, batch_size=BATCH, lr=0.05, progress=False)
    args.update(kw)
    return eo.train.fit(model, train, **args)


def assert_evaluates(model, test):
    r = eo.train.evaluate(model, test)
    assert np.isfinite(r["loss"]) and 0.0 <= r["acc"] <= 1.0


# ---------------------------------------------------------------------------- bad data, up front
@pytest.mark.parametrize("value,name", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nonfinite_image_is_reported_before_training(data, value, name):
    train, test = data
    model = tiny()
    before, steps = model.state_dict(), Steps()
    with pytest.raises(ValueError, match=rf"^train: sample 17 contains a non-finite value \({name}\) at index "
                                         r"\(0, 3, 5\)"):
        fit(model, with_x(train, (17, 0, 3, 5), value), callbacks=[steps])
    assert steps.steps == []
    assert_same(model.state_dict(), before)
    model.input_norm = NORM
    assert_evaluates(model, test)


def test_nan_in_val_is_reported_before_training(data):
    train, test = data
    model = tiny()
    before, steps = model.state_dict(), Steps()
    with pytest.raises(ValueError, match=r"^val: sample 3 contains a non-finite value \(NaN\) at index \(0, 0, 7\)"):
        eo.train.fit(model, train, with_x(test, (3, 0, 0, 7), np.nan), epochs=1, batch_size=BATCH,
                     progress=False, callbacks=[steps])
    assert steps.steps == []
    assert_same(model.state_dict(), before)


def test_float64_value_beyond_float32_is_reported(data):
    train, _ = data
    x = train.x.astype(np.float64)
    x[9, 0, 1, 1] = 1e300
    with pytest.raises(ValueError, match=r"^train: sample 9 contains a value beyond the float32 range \(1e\+300\)"):
        fit(tiny(), eo.data.Dataset(x, train.y))


@pytest.mark.parametrize("which", ["train", "val"])
def test_label_out_of_range_is_reported_before_training(data, which):
    train, test = data
    model = tiny(k=4)
    before = model.state_dict()
    if which == "train":
        train = with_label(train, 11, 4)
    else:
        test = with_label(test, 11, 9)
    label = 4 if which == "train" else 9
    with pytest.raises(ValueError, match=rf"^{which}: sample 11 has label {label}, outside \[0, 4\) "
                                         r"\(the model has 4 classes\)"):
        eo.train.fit(model, train, test, epochs=1, batch_size=BATCH, progress=False)
    assert_same(model.state_dict(), before)


def test_uint8_data_needs_only_the_label_check():
    tr, _ = eo.data.synthetic(num_classes=3, shape=(1, 8, 8), n_train=64, n_test=8)
    with pytest.raises(ValueError, match=r"^train: sample 0 has label 3, outside \[0, 3\)"):
        fit(tiny(k=3), with_label(tr, 0, 3))
    fit(tiny(k=3), tr)


def test_nonfinite_model_is_refused_before_training(data):
    model = tiny()
    model[1].running_var[2] = np.inf
    with pytest.raises(ValueError, match=r"^1\.running_var contains inf at index \(2,\): fit needs a model with "
                                         r"finite weights"):
        fit(model, data[0])


# ---------------------------------------------------------------------------- divergence
def test_huge_image_diverges_restores_the_model_and_keeps_the_checkpoint(data, tmp_path):
    train, test = data
    model = tiny()
    model.input_norm = NORM
    ckpt = tmp_path / "run.npz"
    fit(model, train, epochs=1, checkpoint=str(ckpt))
    saved = ckpt.read_bytes()
    rec = Recorder(model)
    with pytest.raises(FloatingPointError) as e:
        fit(model, with_x(train, 7, 1e30), epochs=2, checkpoint=str(ckpt), resume=True, callbacks=[rec])
    msg = str(e.value)
    assert re.match(r"training diverged at epoch 2, step \d+: BatchNorm statistic '1\.running_var' became inf "
                    r"at index \(\d+,\); lower lr or check the data \(the model and optimizer are back to their "
                    r"state before that step; the checkpoint is that of the last finished epoch\)$", msg), msg
    assert_same(model.state_dict(), rec.restored_state(msg, 256 // BATCH))
    assert np.isfinite(model[1].running_var).all()
    assert_evaluates(model, test)
    assert ckpt.read_bytes() == saved
    fresh = tiny()
    meta = load_checkpoint(str(ckpt), fresh)
    assert meta["epoch"] == 0
    assert_same(fresh.state_dict(), rec.start)


def test_lr_1e6_diverges_and_restores_a_model_that_evaluates(data, tmp_path):
    train, test = data
    model = tiny()
    model.input_norm = NORM
    ckpt = tmp_path / "run.npz"
    fit(model, train, epochs=1, checkpoint=str(ckpt))
    saved = ckpt.read_bytes()
    rec = Recorder(model)
    with pytest.raises(FloatingPointError, match=r"^training diverged at epoch 2, step \d+: .*; lower lr or check "
                                                 r"the data \(the model and optimizer are back") as e:
        fit(model, train, epochs=2, lr=1e6, checkpoint=str(ckpt), resume=True, callbacks=[rec])
    assert rec.after, "no step went through: the lr=1e6 steps must be undone, not just never taken"
    assert_same(model.state_dict(), rec.restored_state(str(e.value), 256 // BATCH))
    assert_evaluates(model, test)
    assert ckpt.read_bytes() == saved
    load_checkpoint(str(ckpt), tiny())


def test_fresh_model_at_lr_1e6_goes_back_to_its_initial_state(data):
    # the first steps leave finite but useless weights: the state before the failing step fails on
    # the previous batch too, so fit goes back to the start of the epoch
    train, test = data
    model = tiny()
    rec = Recorder(model)
    with pytest.raises(FloatingPointError, match=r"at the start of the epoch") as e:
        fit(model, train, epochs=1, lr=1e6, callbacks=[rec])
    assert rec.after
    assert_same(model.state_dict(), rec.start)
    assert_same(model.state_dict(), rec.restored_state(str(e.value), 256 // BATCH))
    assert_evaluates(model, test)


def test_an_update_that_overflows_is_undone(data):
    # inputs of ~1e3 (a tiny input std) give gradients of ~1e2: a finite lr of 1e37 makes the first
    # update itself inf, with no BatchNorm in between to keep the forward finite
    train, test = data
    eo.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    model.input_norm = {"mean": [0.0], "std": [1e-3]}
    before = model.state_dict()
    with pytest.raises(FloatingPointError, match=r"^training diverged at epoch 1, step 0: weight '1\.weight' became "
                                                 r"-?inf at index \(\d+, \d+\) after the optimizer step; lower lr or "
                                                 r"check the data \(the model and optimizer are back to their state "
                                                 r"before that step\)$"):
        fit(model, train, lr=1e37)
    assert_same(model.state_dict(), before)
    assert_evaluates(model, test)


# ---------------------------------------------------------------------------- the guard itself
def _deep_same(a, b):
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a, key=str) == sorted(b, key=str)
        for k in a:
            _deep_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _deep_same(u, v)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    else:
        assert a == b


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("good_steps", [0, 2])
def test_guard_restores_weights_statistics_and_optimizer_state(optimizer, good_steps):
    from edgeopt import optim

    model = tiny()
    params = list(model.named_parameters())
    opt = optim.SGD(params, lr=0.1, momentum=0.9) if optimizer == "sgd" else optim.Adam(params, lr=0.01)
    guard = StepGuard(model, opt)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 8)

    def step(lr):
        guard.save()
        opt.lr = lr
        opt.zero_grad()
        logits = model(x)
        guard.check_forward(logits)
        _, dlogits = eo._core.layers.cross_entropy(logits, y, 0.0)
        model.backward(dlogits)
        guard.check_grads()
        opt.step()
        guard.check_update()

    model.train()
    for _ in range(good_steps):
        step(0.1)
    ref_model, ref_opt = model.state_dict(), opt.state_dict()
    for p in model.parameters():  # gradients so large that any lr overflows the update
        p.grad[...] = 0.0
    with pytest.raises(Diverged, match=r"after the optimizer step"):
        guard.save()
        opt.lr = 3e38
        model(x)  # moves the BatchNorm statistics too
        for p in model.parameters():
            p.grad[...] = 1e30
        opt.step()
        guard.check_update()
    guard.restore()
    assert_same(model.state_dict(), ref_model)
    _deep_same(opt.state_dict(), ref_opt)


def test_guard_reports_nonfinite_gradients_and_statistics():
    model = tiny()
    opt = eo.optim.SGD(list(model.named_parameters()), lr=0.1)
    guard = StepGuard(model, opt)
    model[5].weight.grad[1, 3] = np.nan
    with pytest.raises(Diverged, match=r"^the gradient of '5\.weight' holds NaN at index \(1, 3\)$"):
        guard.check_grads()
    model[1].running_mean[6] = -np.inf
    with pytest.raises(Diverged, match=r"^BatchNorm statistic '1\.running_mean' became -inf at index \(6,\)$"):
        guard.check_forward(np.zeros((2, 4), np.float32))
    with pytest.raises(Diverged, match=r"^the loss is NaN$"):
        guard.check_loss(float("nan"))


def test_weights_spoiled_at_the_end_of_an_epoch_never_reach_the_checkpoint(data, tmp_path):
    # a callback (as pruning or distillation hooks in) blows up the weights after the epoch's
    # last step: the end-of-epoch check catches it before validation and the checkpoint
    train, test = data
    model = tiny()
    model.input_norm = NORM
    last_step = 256 // BATCH - 1

    class Spoil(Recorder):
        def on_step_end(self, batch, loss, logits):
            super().on_step_end(batch, loss, logits)
            if batch.step == last_step:
                model[5].weight.data[...] = 3e38

    rec = Spoil(model)

    ckpt = tmp_path / "run.npz"
    with pytest.raises(FloatingPointError, match=r"^training diverged in epoch 1: the weights after its last step fail "
                                                 r"on that step's batch \(.*\); lower lr or check the data \(the model "
                                                 r"and optimizer are back to their state at the start of the epoch;"):
        eo.train.fit(model, train, test, epochs=1, batch_size=BATCH, lr=0.05, progress=False,
                     checkpoint=str(ckpt), callbacks=[rec])
    assert not ckpt.exists()
    assert_same(model.state_dict(), rec.start)
    assert_evaluates(model, test)


def test_an_interrupted_step_is_undone(data, monkeypatch):
    # Ctrl-C inside the optimizer step (some parameters updated, others not)
    train, _ = data
    model = tiny()
    rec = Recorder(model)
    real_update, calls = eo.optim.SGD._update, []

    def update(self, p, group, state):
        calls.append(1)
        if len(calls) == 3 * len(list(model.parameters())) + 2:  # two parameters into step 3
            raise KeyboardInterrupt
        return real_update(self, p, group, state)

    monkeypatch.setattr(eo.optim.SGD, "_update", update)
    with pytest.raises(KeyboardInterrupt):
        fit(model, train, callbacks=[rec])
    assert sorted(rec.after) == [0, 1, 2]
    assert_same(model.state_dict(), rec.after[2])

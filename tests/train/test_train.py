"""The training loop: learns real data, is deterministic, checkpoints atomically and resumes."""
import os

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import nn


def open_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def tiny_cnn(in_channels=1, num_classes=10):
    eo.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, num_classes))


@pytest.fixture(scope="module")
def fmnist():
    train, test = eo.data.fashion_mnist()
    return train.subset(np.arange(6000)), test.subset(np.arange(2000))


def test_fit_reaches_80_percent_on_fashion_mnist_subset(fmnist):
    train, test = fmnist
    model = tiny_cnn()
    hist = eo.train.fit(model, train, test, epochs=3, batch_size=64, lr=0.01, seed=0, progress=False)
    r = eo.train.evaluate(model, test)
    assert r["acc"] >= 0.80, (r, str(hist))
    assert hist.val_acc[-1] == pytest.approx(r["acc"])
    assert 0 <= r["loss"] < 1.0 and r["top5"] >= r["acc"]


def test_per_image_evaluation_classifies_like_batches(fmnist):
    train, test = fmnist
    model = tiny_cnn()
    eo.train.fit(model, train.subset(np.arange(512)), epochs=1, batch_size=64, lr=0.01, seed=0, progress=False)
    engine = eo.deploy.compile(model, input_shape=(1, 1, 28, 28))
    small = test.subset(np.arange(300))
    whole, single = eo.train.evaluate(engine, small, batch_size=128), eo.train.evaluate(engine, small, per_image=True)
    assert single["acc"] == whole["acc"] and single["top5"] == whole["top5"] and single["n"] == 300
    assert single["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert single["run_ms"] > 0 and whole["run_ms"] > 0


def test_fit_is_deterministic_for_a_seed(fmnist):
    train, _ = fmnist
    small = train.subset(np.arange(512))
    runs = []
    for _ in range(2):
        model = tiny_cnn()
        h = eo.train.fit(model, small, epochs=1, batch_size=64, lr=0.05, seed=3, progress=False)
        runs.append((h.train_loss[0], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for k, v in runs[0][1].items():
        np.testing.assert_array_equal(v, runs[1][1][k], err_msg=k)


def test_checkpoint_resume_matches_uninterrupted_training(fmnist, tmp_path):
    train, _ = fmnist
    small = train.subset(np.arange(384))
    full = tiny_cnn()
    h_full = eo.train.fit(full, small, epochs=2, batch_size=64, lr=0.05, seed=1, progress=False)

    ckpt = str(tmp_path / "run.npz")

    class Interrupt(Exception):
        pass

    class StopInSecondEpoch(eo.train.Callback):
        def on_step_end(self, batch, loss, logits):
            if batch.step == 6:  # 384 / 64 = 6 steps per epoch: the first step of epoch 2
                raise Interrupt

    part = tiny_cnn()
    with pytest.raises(eo.train.CallbackError) as e:
        eo.train.fit(part, small, epochs=2, batch_size=64, lr=0.05, seed=1, progress=False,
                     checkpoint=ckpt, callbacks=[StopInSecondEpoch()])
    assert isinstance(e.value.__cause__, Interrupt)
    assert os.path.exists(ckpt)
    resumed = tiny_cnn()
    h_res = eo.train.fit(resumed, small, epochs=2, batch_size=64, lr=0.05, seed=1, progress=False,
                         checkpoint=ckpt, resume=True)
    assert h_res.epoch == [1, 2]
    np.testing.assert_allclose(h_res.train_loss[1], h_full.train_loss[1], rtol=1e-5)
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert not leftovers


def test_corrupted_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ValueError, match="corrupted"):
        eo.train.load_checkpoint(str(path), tiny_cnn())


def test_failed_save_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    model = tiny_cnn()
    eo.train.save_checkpoint(path, model, meta={"epoch": 0})
    good = open_bytes(path)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        eo.train.save_checkpoint(path, model, meta={"epoch": 1})
    assert open_bytes(path) == good
    assert [f for f in os.listdir(tmp_path)] == ["c.npz"]


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "lr"),
    ({"label_smoothing": 1.5}, "label_smoothing"), ({"schedule": "nope"}, "schedule"),
    ({"optimizer": "rmsprop"}, "optimizer")])
def test_fit_rejects_bad_settings(fmnist, kwargs, match):
    train, _ = fmnist
    with pytest.raises(ValueError, match=match):
        eo.train.fit(tiny_cnn(), train.subset(np.arange(64)), progress=False, **kwargs)

"""The training loop: SGD (or Adam) over a DataLoader with a progress bar, per-epoch validation,
a returned history, atomic checkpoints and resume. Deterministic for a seed and thread count."""
from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

from .. import _core
from .._check import (check_bool, check_callable, check_choice, check_dataset, check_float, check_int,
                      check_module, check_path)
from .._finite import check_data, check_finite
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import check_model_data, evaluate
from .guard import Diverged, StepGuard
from ..data.preprocess import channel_stats, make_loader


@dataclasses.dataclass
class History:
    epoch: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_acc: list = dataclasses.field(default_factory=list)
    images_per_s: list = dataclasses.field(default_factory=list)
    seconds: list = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        head = f"{'epoch':>5} {'lr':>8} {'loss':>8} {'acc':>7} {'val_loss':>9} {'val_acc':>8} {'img/s':>8}"
        rows = [head]
        for i, e in enumerate(self.epoch):
            vl = self.val_loss[i] if self.val_loss else float("nan")
            va = self.val_acc[i] if self.val_acc else float("nan")
            rows.append(f"{e:>5} {self.lr[i]:>8.4g} {self.train_loss[i]:>8.4f} {self.train_acc[i]:>7.4f} "
                        f"{vl:>9.4f} {va:>8.4f} {self.images_per_s[i]:>8.0f}")
        return "\n".join(rows)


def _make_optimizer(name, model, lr, momentum, weight_decay):
    from .. import optim

    params = list(model.named_parameters())
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {name!r}")


def _lr_at(schedule: str, base_lr: float, step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "cosine":
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * base_lr * (1 + math.cos(math.pi * t))
    if schedule == "step":  # x0.1 at 50 % and 75 % of training
        t = (step - warmup) / max(1, total - warmup)
        return base_lr * (0.1 ** ((t >= 0.5) + (t >= 0.75)))
    if schedule == "constant":
        return base_lr
    raise ValueError(f"schedule: expected 'cosine', 'step' or 'constant', got {schedule!r}")


def _check_args(model, train, val, epochs, batch_size, lr, schedule, warmup_epochs, optimizer, momentum,
                weight_decay, label_smoothing, augment, seed, checkpoint, resume, progress, step_callback):
    """Every argument of fit, before any work: a bad one (lr="0.1", step_callback=5) must fail
    here, not after a training step. Data contents (finite, label range) are checked separately."""
    check_module("model", model)
    for name, data in (("train", train), ("val", val)):
        if data is None and name == "val":
            continue
        check_dataset(name, data)
        if len(data) == 0:
            raise ValueError(f"{name}: the dataset is empty")
    if val is not None and val.shape != train.shape:
        raise ValueError(f"val: expected samples of shape {train.shape} (as train's), got {val.shape}")
    check_model_data(model, train, "train")
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1, 2**62)
    check_float("lr", lr, 0.0, min_open=True)
    check_choice("schedule", schedule, ("cosine", "step", "constant"))
    check_float("warmup_epochs", warmup_epochs, 0.0)
    check_choice("optimizer", optimizer, ("sgd", "adam"))
    check_float("momentum", momentum, 0.0)
    check_float("weight_decay", weight_decay, 0.0)
    check_float("label_smoothing", label_smoothing, 0.0, 1.0, max_open=True)
    check_choice("augment", augment, (None, "crop_flip"))
    check_int("seed", seed, 0, 2**63 - 1)  # loader seeds are seed + epoch * 7919 < 2^64
    if checkpoint is not None:
        check_path("checkpoint", checkpoint)
    check_bool("resume", resume)
    check_bool("progress", progress)
    if step_callback is not None:
        check_callable("step_callback", step_callback)


def fit(model, train, val=None, epochs: int = 10, batch_size: int = 128, lr: float = 0.1,
        schedule: str = "cosine", warmup_epochs: float = 0.0, optimizer: str = "sgd",
        momentum: float = 0.9, weight_decay: float = 5e-4, label_smoothing: float = 0.0,
        augment=None, seed: int = 0, checkpoint: str | None = None, resume: bool = False,
        progress: bool = True, step_callback=None) -> History:
    """Train `model` in place on `train`; validate on `val` each epoch; return the History.

    checkpoint: path written (atomically) after every epoch; with resume=True training continues
    from it when it exists. augment: None or "crop_flip" (random crop with 4-pixel padding and
    horizontal flip, for CIFAR-style data). step_callback(step, loss): called after each step
    (knowledge distillation and pruning schedules hook in here).

    Non-finite images or labels outside the model's classes in `train` or `val` raise ValueError
    before any training. A step that makes anything non-finite (BatchNorm statistics, logits, loss,
    gradients, updated weights) raises FloatingPointError "training diverged ..." and leaves the
    model and optimizer bit-identical to their last good state (train/guard.py); the checkpoint
    keeps the last finished epoch."""
    _check_args(model, train, val, epochs, batch_size, lr, schedule, warmup_epochs, optimizer, momentum,
                weight_decay, label_smoothing, augment, seed, checkpoint, resume, progress, step_callback)
    from ..random import manual_seed

    _check_data(model, train, val)
    if getattr(model, "input_norm", None) is None:
        mean, std = channel_stats(train)
        model.input_norm = {"mean": mean, "std": std}
    mean, std = model.input_norm["mean"], model.input_norm["std"]
    opt = _make_optimizer(optimizer, model, lr, momentum, weight_decay)
    history, start = History(), 0
    if resume and checkpoint and os.path.exists(checkpoint):
        meta = load_checkpoint(checkpoint, model, opt)
        start = meta["epoch"] + 1
        history = History(**meta["history"])
        model.input_norm = meta["input_norm"]
    check_finite(_state(model), suffix=": fit needs a model with finite weights and statistics")
    guard = StepGuard(model, opt)

    def forward_backward(x, y):
        """Forward, loss and backward, each checked by the guard; (logits, loss)."""
        opt.zero_grad()
        logits = model(x)
        guard.check_forward(logits)
        loss, dlogits = _core.cross_entropy(logits, y, label_smoothing)
        guard.check_loss(loss)
        model.backward(dlogits)
        guard.check_grads()
        return logits, loss

    steps_per_epoch = math.ceil(len(train) / batch_size)
    total, warmup = epochs * steps_per_epoch, int(warmup_epochs * steps_per_epoch)
    for epoch in range(start, epochs):
        manual_seed(seed * 100003 + epoch)  # dropout and any other layer randomness
        loader = make_loader(train, batch_size, shuffle=True, seed=seed + epoch * 7919, mean=mean, std=std,
                             augment=augment)
        model.train()
        t0, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = _progress(progress, steps_per_epoch, f"epoch {epoch + 1}/{epochs}")
        guard.save_epoch()
        last = None  # the last batch of this epoch that trained cleanly (train/guard.py)
        for i, (x, y) in enumerate(loader):
            step = epoch * steps_per_epoch + i
            guard.save()
            try:  # nothing a failing step did is kept (train/guard.py)
                opt.lr = _lr_at(schedule, lr, step, total, warmup)
                logits, loss = forward_backward(x, y)
                opt.step()
                guard.check_update()
            except Diverged as e:
                raise _diverged(guard, forward_backward, last, f"at epoch {epoch + 1}, step {i}: {e}",
                                checkpoint) from None
            except BaseException:  # e.g. KeyboardInterrupt mid-update: never leave half a step
                guard.restore()
                raise
            last = (x, y)
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss) * len(y)
            if step_callback is not None:
                step_callback(step, float(loss))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                img_s=f"{seen / (time.perf_counter() - t0):.0f}", refresh=False)
        dt = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        bad = _failure(guard, forward_backward, last)  # what validation and the checkpoint will see
        if bad is not None:
            raise _diverged(guard, forward_backward, None, f"in epoch {epoch + 1}: the weights after its last "
                            f"step fail on that step's batch ({bad})", checkpoint, epoch_start=True)
        history.epoch.append(epoch + 1)
        history.lr.append(opt.lr)
        history.train_loss.append(loss_sum / seen)
        history.train_acc.append(correct / seen)
        history.images_per_s.append(seen / dt)
        history.seconds.append(dt)
        if val is not None:
            r = evaluate(model, val)
            history.val_loss.append(r["loss"])
            history.val_acc.append(r["acc"])
        if progress:
            msg = f"epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f} acc {correct / seen:.4f}"
            if val is not None:
                msg += f" | val loss {history.val_loss[-1]:.4f} acc {history.val_acc[-1]:.4f}"
            print(msg + f" | {seen / dt:.0f} img/s", flush=True)
        if checkpoint:
            save_checkpoint(checkpoint, model, opt, {"epoch": epoch, "history": history.as_dict(),
                                                      "input_norm": model.input_norm})
    model.eval()
    return history


def _diverged(guard, forward_backward, last, what, checkpoint, epoch_start=False) -> FloatingPointError:
    """Put the model back to its last good state and return fit's error: the state before the
    failing step, unless that fails on the epoch's last clean batch too (train/guard.py)."""
    guard.restore()
    back = "at the start of the epoch" if epoch_start else "before that step"
    bad = None if epoch_start else _failure(guard, forward_backward, last)
    if bad is not None:
        epoch_start = True
        back = f"at the start of the epoch, as the one before the failing step fails on the previous batch too ({bad})"
    if epoch_start:
        guard.restore(epoch=True)
    if checkpoint:
        back += "; the checkpoint is that of the last finished epoch"
    return FloatingPointError(f"training diverged {what}; lower lr or check the data (the model and optimizer "
                              f"are back to their state {back})")


def _failure(guard, forward_backward, batch):
    """guard.failure on `batch` (None: nothing to test), leaving the model as it was."""
    if batch is None:
        return None
    guard.save()
    try:
        return guard.failure(forward_backward, *batch)
    finally:
        guard.restore()


def _check_data(model, train, val) -> None:
    """Finite images and labels in [0, classes) for train and val, before any training (one C++
    pass each); the class count is the width of the model's output."""
    k = _num_outputs(model, train)
    for name, data in (("train", train), ("val", val)):
        if data is not None:
            check_data(name, data.x, data.y, k, suffix=f" (fit checks the {name} data before training)")


def _num_outputs(model, data):
    """Logit count of `model` on one zero sample shaped like `data`'s (None if not (N, K))."""
    from .. import nn

    was_training = model.training
    model.eval()
    try:
        with nn.no_grad():
            out = model.forward(np.zeros((1,) + tuple(data.x.shape[1:]), np.float32))
    finally:
        model.train(was_training)
    return int(out.shape[1]) if np.ndim(out) == 2 else None


def _state(model):
    """(name, array) of every parameter and float buffer, for the finiteness check."""
    out = [(n, p.data) for n, p in model.named_parameters()]
    return out + [(n, b) for n, b in model.named_buffers() if b.dtype.kind == "f"]


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but training must not fail without it
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch")

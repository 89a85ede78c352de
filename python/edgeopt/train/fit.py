"""The training loop: SGD (or Adam) over a DataLoader with a progress bar, per-epoch validation,
a returned history, atomic checkpoints and resume. Deterministic for a seed and thread count."""
from __future__ import annotations

import math
import os
import time

import numpy as np

from .. import _core
from .._check import (check_bool, check_callable, check_choice, check_float, check_instances, check_int, check_path)
from ..data.dataset import check_dataset
from ..nn.module import check_module
from .._finite import check_data, check_finite
from .callbacks import Batch, Callback, notify
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import check_model_data, evaluate
from .guard import Diverged, StepGuard
from .history import History
from ..data.preprocess import channel_stats, make_loader


def _make_optimizer(name, model, lr, momentum, weight_decay):
    from .. import optim

    params = list(model.named_parameters())
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {name!r}")


def _make_schedule(name, opt, total: int, warmup: int):
    """fit's schedule over `total` steps: a linear warmup that reaches lr on its last step, then
    cosine to 0, x0.1 at 50 % and 75 % of the remaining steps, or constant."""
    from ..optim import lr_scheduler as ls

    rest = max(1, total - warmup)
    if name == "cosine":
        after = ls.CosineAnnealingLR(opt, T_max=rest)
    elif name == "step":  # milestones: the first steps with (step - warmup) / rest >= 0.5, >= 0.75
        after = ls.MultiStepLR(opt, [(rest + 1) // 2, (3 * rest + 3) // 4], gamma=0.1)
    else:
        after = None
    if warmup:
        return ls.LinearWarmup(opt, warmup, inclusive=True, after=after)
    return after or ls.LambdaLR(opt, lambda epoch: 1.0)


def _check_args(model, train, val, epochs, batch_size, lr, schedule, warmup_epochs, optimizer, momentum,
                weight_decay, label_smoothing, augment, seed, checkpoint, resume, progress, loss, callbacks):
    """Every argument of fit, before any work: a bad one (lr="0.1", callbacks=[5]) must fail here,
    not after a training step; returns the callbacks as a tuple. Data contents (finite, label
    range) are checked separately."""
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
    if loss is not None:
        check_callable("loss", loss)
        if label_smoothing:
            raise ValueError(f"label_smoothing: applies to the default loss only, got {label_smoothing!r} "
                             "with a custom loss (smooth the labels inside it)")
    return check_instances("callbacks", callbacks, Callback, "edgeopt.train.Callback")


def fit(model, train, val=None, epochs: int = 10, batch_size: int = 128, lr: float = 0.1,
        schedule: str = "cosine", warmup_epochs: float = 0.0, optimizer: str = "sgd",
        momentum: float = 0.9, weight_decay: float = 5e-4, label_smoothing: float = 0.0,
        augment=None, seed: int = 0, checkpoint: str | None = None, resume: bool = False,
        progress: bool = True, loss=None, callbacks=()) -> History:
    """Train `model` in place on `train`; validate on `val` each epoch; return the History.

    schedule: the lr per step, from edgeopt.optim.lr_scheduler: "cosine" (to 0 at the end),
    "step" (x0.1 at 50 % and 75 % of the steps) or "constant", after a linear warmup of
    warmup_epochs that reaches lr on its last step (lr/w, 2 lr/w, ..., lr over w steps).
    checkpoint: path written (atomically) after every epoch; with resume=True training continues
    from it when it exists. augment: None or "crop_flip" (random crop with 4-pixel padding and
    horizontal flip, for CIFAR-style data).

    loss(logits, labels, batch) -> (loss, dlogits): the training loss and its gradient with respect
    to the logits (same shape); batch is the step's train.callbacks.Batch (x: the normalized input
    the model saw, y, epoch, step). Default: cross-entropy with `label_smoothing`. Validation and
    evaluate() report cross-entropy whatever the training loss. The guard's end-of-epoch check
    calls the loss once more on the epoch's last batch (a loss should not count its calls).
    callbacks: edgeopt.train.Callback objects, called in order at the hooks train/callbacks.py lists;
    their state_dict() goes into the checkpoint, and a resume gives each saved state back to the
    callback of the same class and position among that class (train/checkpoint.py).

    Non-finite images or labels outside the model's classes in `train` or `val` raise ValueError
    before any training. A step that makes anything non-finite (BatchNorm statistics, logits, loss,
    gradients, updated weights) raises FloatingPointError "training diverged ..." and leaves the
    model and optimizer bit-identical to their last good state (train/guard.py); the checkpoint
    keeps the last finished epoch."""
    callbacks = _check_args(model, train, val, epochs, batch_size, lr, schedule, warmup_epochs, optimizer,
                            momentum, weight_decay, label_smoothing, augment, seed, checkpoint, resume, progress,
                            loss, callbacks)
    from ..random import manual_seed

    _check_data(model, train, val)
    if getattr(model, "input_norm", None) is None:
        mean, std = channel_stats(train)
        model.input_norm = {"mean": mean, "std": std}
    mean, std = model.input_norm["mean"], model.input_norm["std"]
    opt = _make_optimizer(optimizer, model, lr, momentum, weight_decay)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = epochs * steps_per_epoch
    sched = _make_schedule(schedule, opt, total, int(warmup_epochs * steps_per_epoch))
    history, start = History(), 0
    if resume and checkpoint and os.path.exists(checkpoint):
        meta = load_checkpoint(checkpoint, model, opt, callbacks)
        start = meta["epoch"] + 1
        history = History(**meta["history"])
        model.input_norm = meta["input_norm"]
    check_finite(_state(model), suffix=": fit needs a model with finite weights and statistics")
    guard = StepGuard(model, opt)

    def forward_backward(batch):
        """Forward, loss and backward, each checked by the guard; (logits, loss)."""
        opt.zero_grad()
        logits = model(batch.x)
        guard.check_forward(logits)
        if loss is None:
            value, dlogits = _core.layers.cross_entropy(logits, batch.y, label_smoothing)
            guard.check_loss(value)
        else:
            value, dlogits = _loss_output(loss(logits, batch.y, batch), logits)
            guard.check_loss(value, dlogits)
        model.backward(dlogits)
        guard.check_grads()
        return logits, value

    notify(callbacks, "on_train_begin", model, opt, total)
    for epoch in range(start, epochs):
        manual_seed(seed * 100003 + epoch)  # dropout and any other layer randomness
        notify(callbacks, "on_epoch_begin", epoch)
        loader = make_loader(train, batch_size, shuffle=True, seed=seed + epoch * 7919, mean=mean, std=std,
                             augment=augment)
        model.train()
        t0, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = _progress(progress, steps_per_epoch, f"epoch {epoch + 1}/{epochs}")
        guard.save_epoch()
        last = None  # the last batch of this epoch that trained cleanly (train/guard.py)
        for i, (x, y) in enumerate(loader):
            step = epoch * steps_per_epoch + i
            batch = Batch(x, y, epoch, step)
            guard.save()
            try:  # nothing a failing step did is kept (train/guard.py)
                opt.lr = sched.lr_at(step)[0]  # a closed form of the step: a resumed run replays nothing
                notify(callbacks, "on_step_begin", batch)
                logits, value = forward_backward(batch)
                opt.step()
                guard.check_update()
                notify(callbacks, "on_step_end", batch, value, logits)
            except Diverged as e:
                raise _diverged(guard, forward_backward, last, f"at epoch {epoch + 1}, step {i}: {e}",
                                checkpoint) from None
            except BaseException:  # e.g. KeyboardInterrupt mid-update: never leave half a step
                guard.restore()
                raise
            last = batch
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += value * len(y)
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
        metrics = {k: v[-1] for k, v in history.as_dict().items() if v and k != "epoch"}
        notify(callbacks, "on_epoch_end", epoch, metrics)
        if checkpoint:
            save_checkpoint(checkpoint, model, opt, {"epoch": epoch, "history": history.as_dict(),
                                                      "input_norm": model.input_norm}, callbacks)
    model.eval()
    notify(callbacks, "on_train_end", history)
    return history


def _loss_output(out, logits):
    """A custom loss's (loss, dlogits) as (float, float32 array shaped like the logits)."""
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"loss: expected loss(logits, labels, batch) to return (loss, dlogits), got "
                        f"{type(out).__name__}")
    value, dlogits = out
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"loss: expected the loss to be a number, got {type(value).__name__}")
    want = f"dlogits as a float array of the logits' shape {logits.shape}"
    if not isinstance(dlogits, np.ndarray):
        raise TypeError(f"loss: expected {want}, got {type(dlogits).__name__}")
    if dlogits.dtype.kind != "f" or dlogits.shape != logits.shape:
        raise ValueError(f"loss: expected {want}, got shape {dlogits.shape} and dtype {dlogits.dtype}")
    return float(value), np.ascontiguousarray(dlogits, dtype=np.float32)


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
        return guard.failure(forward_backward, batch)
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

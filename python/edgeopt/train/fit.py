"""The training loop: SGD (or Adam) over a DataLoader with a progress bar, per-epoch validation,
a returned history, atomic checkpoints and resume. Deterministic for a seed and thread count."""
from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

from .. import _core
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate
from .preprocess import channel_stats, make_loader


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


def _check_args(model, train, epochs, batch_size, lr, label_smoothing):
    if not hasattr(model, "backward"):
        raise TypeError(f"model: expected an edgeopt.nn.Module, got {type(model).__name__}")
    if len(train) == 0:
        raise ValueError("train: the dataset is empty")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected an integer >= 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1), got {label_smoothing!r}")


def fit(model, train, val=None, epochs: int = 10, batch_size: int = 128, lr: float = 0.1,
        schedule: str = "cosine", warmup_epochs: float = 0.0, optimizer: str = "sgd",
        momentum: float = 0.9, weight_decay: float = 5e-4, label_smoothing: float = 0.0,
        augment=None, seed: int = 0, checkpoint: str | None = None, resume: bool = False,
        progress: bool = True, step_callback=None) -> History:
    """Train `model` in place on `train`; validate on `val` each epoch; return the History.

    checkpoint: path written (atomically) after every epoch; with resume=True training continues
    from it when it exists. augment: None or "crop_flip" (random crop with 4-pixel padding and
    horizontal flip, for CIFAR-style data). step_callback(step, loss): called after each step
    (knowledge distillation and pruning schedules hook in here)."""
    _check_args(model, train, epochs, batch_size, lr, label_smoothing)
    from ..random import manual_seed

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
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total, warmup = epochs * steps_per_epoch, int(warmup_epochs * steps_per_epoch)
    for epoch in range(start, epochs):
        manual_seed(seed * 100003 + epoch)  # dropout and any other layer randomness
        loader = make_loader(train, batch_size, shuffle=True, seed=seed + epoch * 7919, mean=mean, std=std,
                             augment=augment)
        model.train()
        t0, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = _progress(progress, steps_per_epoch, f"epoch {epoch + 1}/{epochs}")
        for i, (x, y) in enumerate(loader):
            step = epoch * steps_per_epoch + i
            opt.lr = _lr_at(schedule, lr, step, total, warmup)
            opt.zero_grad()
            logits = model(x)
            loss, dlogits = _core.cross_entropy(logits, y, label_smoothing)
            if not math.isfinite(loss):
                raise FloatingPointError(f"training diverged: loss is {loss} at epoch {epoch + 1}, step {i}; "
                                         "lower lr or check the data")
            model.backward(dlogits)
            opt.step()
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


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but training must not fail without it
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch")

"""What `fit` hands to a custom loss and to callbacks: the Batch of a step, the Callback base class.

The techniques that change training hook in here rather than forking the loop: a pruning schedule
(masks at on_step_begin), QAT (freeze observers / BatchNorm at on_epoch_begin), distillation (a
teacher run on ``batch.x`` inside the loss). Hooks run in this order for every run of fit::

    on_train_begin(model, optimizer, total_steps)
      on_epoch_begin(epoch)
        on_step_begin(batch)          inside the step: the lr of the step is set, nothing computed
        on_step_end(batch, loss, logits)   after the optimizer step and the guard's checks
      on_epoch_end(epoch, metrics)    after validation, before the checkpoint is written
    on_train_end(history)             the model is in eval mode, as fit returns it

``epoch`` and ``step`` count from 0; ``step`` is global (epoch * steps_per_epoch + index), so a
resumed run continues the numbering. A callback that holds state returns it from ``state_dict()``
(a dict with str keys of numbers, strings, arrays, lists, dicts or None) and takes it back in
``load_state_dict``; fit stores it in every checkpoint and restores it on resume, before
on_train_begin.

An exception from a hook becomes a CallbackError naming the callback and the hook (the original is
its ``__cause__``; KeyboardInterrupt passes unchanged). One raised in on_step_begin / on_step_end
undoes that step, like a diverging step (train/guard.py); from any other hook the model stays as it
is. The checkpoint holds the last epoch whose on_epoch_end returned.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Batch", "Callback", "CallbackError"]


@dataclasses.dataclass(frozen=True)
class Batch:
    """One training step's batch, as the model sees it.

    x: float32 (N, C, H, W), normalized with the model's ``input_norm`` and augmented: the exact
       input of the forward pass (a distillation teacher with the same ``input_norm`` takes it as is)
    y: int64 (N,) labels
    epoch, step: 0-based epoch and global step
    """
    x: np.ndarray
    y: np.ndarray
    epoch: int
    step: int


class Callback:
    """Base class of fit's callbacks: every hook does nothing; override the ones you need."""

    def on_train_begin(self, model, optimizer, total_steps: int) -> None:
        """Before the first step of this run (after a resume restored the state)."""

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_step_begin(self, batch: Batch) -> None:
        pass

    def on_step_end(self, batch: Batch, loss: float, logits: np.ndarray) -> None:
        """loss: the step's loss; logits: the model's (N, classes) output for batch.x."""

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        """metrics: lr, train_loss, train_acc, images_per_s, seconds (and val_loss, val_acc with
        validation data) of this epoch, as fit's History records them."""

    def on_train_end(self, history) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class CallbackError(RuntimeError):
    """A callback's hook raised; ``__cause__`` is its exception."""


def call(i: int, cb: Callback, hook: str, *args):
    """``cb.hook(*args)``, its exception wrapped in a CallbackError naming callbacks[i]."""
    try:
        return getattr(cb, hook)(*args)
    except Exception as e:
        raise CallbackError(f"callbacks[{i}] ({type(cb).__name__}).{hook} raised {type(e).__name__}: {e}") from e


def notify(callbacks, hook: str, *args) -> None:
    """Call ``hook`` on every callback in order (a loop over an empty tuple when there are none)."""
    for i, cb in enumerate(callbacks):
        call(i, cb, hook, *args)

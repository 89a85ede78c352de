"""StepGuard: fit's protection of the model against a bad step.

A step can go wrong in four places, and each is checked before its damage is kept:
  forward     BatchNorm's running statistics are updated *during* the forward pass (the C++
              kernel writes them in place), so a 1e30 image makes running_var inf before any loss
              exists; the float buffers and the logits are checked right after the forward.
  loss        NaN or Inf (and, for a custom loss, its gradient dlogits).
  backward    a non-finite gradient, before the optimizer sees it (the optimizers check too, but
              only parameter by parameter, after updating the earlier ones).
  update      weights or optimizer state that the step itself made non-finite.
On any of them fit restores what ``save`` took at the start of the step: weights, every buffer
(BatchNorm running statistics and their batch counter) and the optimizer's state and
hyper-parameters, bit for bit, and raises FloatingPointError.

The state before the failing step is not always good: lr = 1e6 grows the weights for a few steps
while every check passes, until a forward overflows. So fit first checks the restored state on the
last batch of the epoch that trained cleanly (train-mode forward / backward and an eval-mode
forward, all finite); if it fails there too, the damage is older and fit goes back to the state
``save_epoch`` took at the start of the epoch (the one the last checkpoint holds). The same check
runs once at the end of every epoch, before validation and the checkpoint.

BatchNorm statistics are snapshotted rather than committed late: they are two vectors per layer,
and deferring the kernel's in-place update would change every normalization layer for them.

Cost per step, all O(parameters) with no allocation after the first step: one np.copyto of the
weights and optimizer state into buffers kept from the step before, and three C++ scans
(edgeopt._finite: one pass each, GIL released) over the gradients, the updated weights and
optimizer state, and the small buffers and logits. The forward and backward passes cost a batch's
worth of convolutions, orders of magnitude more.
"""
from __future__ import annotations

import math

import numpy as np

from .._finite import find_nonfinite, value_name

__all__ = ["StepGuard", "Diverged"]


class Diverged(Exception):
    """A step produced a non-finite value; the message says what and where."""


def _store(dst, src):
    """Copy `src` into the preallocated `dst` when it fits, else a fresh copy; returns the copy."""
    if dst is not None and dst.shape == src.shape and dst.dtype == src.dtype:
        np.copyto(dst, src)
        return dst
    return src.copy()


def _buffer_label(module, name: str) -> str:
    from ..nn import BatchNorm2d

    return f"BatchNorm statistic '{name}'" if isinstance(module, BatchNorm2d) else f"buffer '{name}'"


def _scannable(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous


class _Snapshot:
    """Weights, buffers and optimizer state at one moment, in arrays reused by the next take."""

    def __init__(self):
        self.params, self.buffers, self.opt = [], [], {}
        self.opt_state = self.groups = None

    def take(self, g: "StepGuard") -> None:
        if len(self.params) != len(g.params):
            self.params, self.buffers = [None] * len(g.params), [None] * len(g.buffers)
        for i, (_, p) in enumerate(g.params):
            self.params[i] = _store(self.params[i], p.data)
        for i, (_, m, k) in enumerate(g.buffers):
            v = m._buffers.get(k)
            self.buffers[i] = None if v is None else _store(self.buffers[i], v)
        state = []
        for p in g.opt_params():
            st = g.opt.state.get(p)
            if st is None:
                state.append(None)
                continue
            keep = self.opt.setdefault(id(p), {})
            entry = {}
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    keep[k] = entry[k] = _store(keep.get(k), v)
                else:
                    entry[k] = v
            state.append(entry)
        self.opt_state = state
        self.groups = [{k: v for k, v in grp.items() if k != "params"} for grp in g.opt.param_groups]

    def put(self, g: "StepGuard") -> None:
        """Write the snapshot back in place (arrays keep their identity)."""
        for (_, p), snap in zip(g.params, self.params):
            if p.data.shape == snap.shape:
                np.copyto(p.data, snap)
            else:
                p.data = snap.copy()
        for (_, m, k), snap in zip(g.buffers, self.buffers):
            cur = m._buffers.get(k)
            if snap is None:
                m._buffers[k] = None
            elif cur is not None and cur.shape == snap.shape and cur.dtype == snap.dtype:
                np.copyto(cur, snap)
            else:
                m._buffers[k] = snap.copy()
        for p, entry in zip(g.opt_params(), self.opt_state):
            if entry is None:
                g.opt.state.pop(p, None)
                continue
            st = g.opt.state.setdefault(p, {})
            for k in [k for k in st if k not in entry]:
                del st[k]
            for k, v in entry.items():
                st[k] = _store(st.get(k), v) if isinstance(v, np.ndarray) else v
        for grp, saved in zip(g.opt.param_groups, self.groups):
            grp.update(saved)


class StepGuard:
    def __init__(self, model, optimizer):
        self.model, self.opt = model, optimizer
        self.params = list(model.named_parameters())
        # (what to call it, owning module, key): buffers are looked up each time, so a module that
        # replaces an array (instead of writing into it) is still covered
        self.buffers = [(_buffer_label(m, f"{mname}.{k}" if mname else k), m, k)
                        for mname, m in model.named_modules() for k, v in m._buffers.items()
                        if isinstance(v, np.ndarray)]
        self._names = {id(p): n for n, p in self.params}
        self._step, self._epoch = _Snapshot(), _Snapshot()

    def opt_params(self):
        return [p for grp in self.opt.param_groups for p in grp["params"]]

    # ------------------------------------------------------------------ snapshots
    def save(self) -> None:
        """Take the state a failing step returns to (call before the forward pass)."""
        self._step.take(self)

    def save_epoch(self) -> None:
        """Take the state of the start of an epoch (the fallback when the step's is bad too)."""
        self._epoch.take(self)

    def restore(self, epoch: bool = False) -> None:
        """Back to the last ``save`` (or ``save_epoch``), in place."""
        (self._epoch if epoch else self._step).put(self)

    def failure(self, forward_backward, batch):
        """What goes non-finite when the model as it is now trains and evaluates on `batch` (a
        train.callbacks.Batch), or None. Runs ``forward_backward(batch)`` (fit's checked forward,
        loss and backward) and an eval-mode forward on ``batch.x``; the running statistics this
        changes are the caller's to restore."""
        from ..nn import no_grad

        was_training = self.model.training
        try:
            self.model.train()
            forward_backward(batch)
            self.model.eval()
            with no_grad():
                self.check_forward(self.model(batch.x))
            return None
        except Diverged as e:
            return str(e) + (" in eval mode" if not self.model.training else "")
        finally:
            self.model.train(was_training)

    # ------------------------------------------------------------------ checks
    def check_forward(self, logits) -> None:
        """Running statistics (in module order) and logits, after the forward pass."""
        named = [(label, m._buffers.get(k)) for label, m, k in self.buffers]
        named.append(("the logits", np.ascontiguousarray(logits, dtype=np.float32)))
        self._scan(named, "became")

    def check_loss(self, loss, dlogits=None) -> None:
        """The loss, and the gradient of a custom loss (cross-entropy's is finite when its loss is)."""
        if not math.isfinite(loss):
            raise Diverged(f"the loss is {value_name(loss)}")
        if dlogits is not None:
            self._scan([("the loss gradient dlogits", dlogits)], "holds")

    def check_grads(self) -> None:
        self._scan([(f"the gradient of '{n}'", p.grad) for n, p in self.params if p.requires_grad], "holds")

    def check_update(self) -> None:
        """Weights and optimizer state after the optimizer step."""
        named = [(f"weight '{n}'", p.data) for n, p in self.params]
        for p, st in self.opt.state.items():
            named += [(f"optimizer state '{k}' of '{self._names.get(id(p), p)}'", v) for k, v in st.items()]
        self._scan(named, "became", " after the optimizer step")

    @staticmethod
    def _scan(named, verb: str, where: str = "") -> None:
        found = find_nonfinite([(n, a) for n, a in named if _scannable(a)])
        if found is not None:
            name, value, at = found
            raise Diverged(f"{name} {verb} {value} at index {at}{where}")

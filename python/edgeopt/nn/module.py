"""Module: the base of every layer and model.

Parameters, buffers and child modules register themselves when assigned as attributes, as in
PyTorch, so names (``features.0.weight``, ``bn.running_mean``) and state dicts match PyTorch's.

Forward and backward are explicit. ``forward(x)`` computes the output and, unless gradients are
disabled (``with edgeopt.nn.no_grad():``), keeps what backward will need. ``backward(dy)`` consumes
that record and returns ``dx``.

Writing a layer: forward validates with ``x = self._check_input(x, ndim, channels)`` and records with
``self._save_for_backward(y, *values)``; backward starts with
``dy, values = self._saved_for_backward(dy)`` (a clear error when no forward was recorded or dy does
not match the output ``y``). Containers just call their children.

Gradient policy: parameter gradients **accumulate** into ``p.grad`` (the kernels do ``+=``), so
call ``zero_grad()`` between steps; input gradients are returned as new arrays. One forward
supports one backward; a module instance used twice in one forward keeps only the last record,
so give each use its own instance (modules without state, e.g. ReLU, are cheap).

``eval()`` switches layers to inference behaviour (BatchNorm uses running statistics, Dropout is
the identity); it does not disable backward — e.g. a BatchNorm with frozen statistics still
propagates gradients. Use ``no_grad()`` to skip recording during inference.
"""
from __future__ import annotations

import contextlib
import itertools
from collections import OrderedDict, namedtuple
from typing import Callable, Iterator

import numpy as np

from .._check import show_value
from .parameter import Parameter

__all__ = ["Module", "RemovableHandle", "StateDictError", "no_grad", "enable_grad", "is_grad_enabled"]

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``: forward passes record what backward needs."""
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool):
    global _grad_enabled
    prev, _grad_enabled = _grad_enabled, mode
    try:
        yield
    finally:
        _grad_enabled = prev


def no_grad():
    """Context manager: forward passes inside it keep nothing for backward (inference)."""
    return _set_grad_enabled(False)


def enable_grad():
    """Context manager: re-enable recording inside a ``no_grad()`` block."""
    return _set_grad_enabled(True)


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(KeyError):
    """Missing or unexpected keys in ``load_state_dict`` (a KeyError with a readable message)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RemovableHandle:
    """Returned by ``register_forward_hook`` / ``register_forward_pre_hook``; ``remove()`` detaches
    the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _check_hook(hook) -> None:
    if not callable(hook):  # not edgeopt._check: it imports this module (an import cycle)
        raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")


def _parametrized_message(module, name: str) -> str:
    return (f"{module._short_name()}.{name} is parametrized: its value is computed from '{name}_orig'; "
            f"assign to '{name}_orig', or call edgeopt.nn.parametrize.remove_parametrizations(module, "
            f"{name!r}) first")


class Module:
    """Base class of layers and models (see the module docstring for the gradient policy)."""

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_parametrizations"] = {}  # tensor name -> its chain (nn/parametrize.py)
        d["_ctx"] = None
        d["training"] = True

    # ------------------------------------------------------------------ compute
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, inputs)`` runs before every call; ``inputs`` is the tuple of positional
        arguments. Returning a non-None value replaces them (a tuple, or a single input)."""
        _check_hook(hook)
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, inputs, output)`` runs after every call; ``inputs`` is the tuple of
        positional arguments. Returning a non-None value replaces the output."""
        _check_hook(hook)
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def _hooked(self) -> bool:
        """Whether forward hooks are registered (fused paths then run the module unfused, so hooks
        see every call)."""
        return bool(self._forward_pre_hooks or self._forward_hooks)

    # What backward needs is kept by forward through these two.
    def _save_for_backward(self, y, *values) -> None:
        """Called by forward with its output ``y`` (whose shape dy must have) and the ``values``
        backward needs; keeps nothing inside ``no_grad()``."""
        self.__dict__["_ctx"] = (np.shape(y), values) if _grad_enabled else None

    def _saved_for_backward(self, dy) -> tuple[np.ndarray, tuple]:
        """Called first in backward: raises unless a forward was recorded and ``dy`` is a float32
        array shaped like its output; returns ``(dy C-contiguous, values)`` and releases the record
        (one backward per forward). A rejected ``dy`` leaves the record in place."""
        ctx = self.__dict__["_ctx"]
        who = self._short_name()
        if ctx is None:
            raise RuntimeError(
                f"{who}.backward() called without a preceding forward that recorded for backward: "
                "run forward first (outside edgeopt.nn.no_grad()); each forward supports a single backward")
        shape, values = ctx
        if not isinstance(dy, np.ndarray):
            raise TypeError(f"{who}.backward: expected dy as a numpy.ndarray, got {type(dy).__name__}")
        if dy.dtype != np.float32:
            raise TypeError(f"{who}.backward: expected float32 dy, got dtype {dy.dtype}")
        if dy.shape != shape:
            raise ValueError(f"{who}.backward: expected dy of shape {shape} (the forward output's), "
                             f"got {dy.shape}")
        self.__dict__["_ctx"] = None
        return np.asarray(dy, order="C"), values

    def _short_name(self) -> str:
        extra = self.extra_repr()
        return f"{type(self).__name__}({extra})" if "\n" not in extra else type(self).__name__

    def _check_input(self, x, ndim: int | None, channels: int | None = None, axis: int = 1) -> np.ndarray:
        """Validate a non-empty float32 input of rank ``ndim`` (any rank if None) with ``channels``
        entries on ``axis``; returns it C-contiguous. Errors name the layer."""
        who = self._short_name()
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{who}: expected a numpy.ndarray input, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise TypeError(f"{who}: expected float32 input, got dtype {x.dtype} "
                            "(convert with x.astype(numpy.float32))")
        if ndim is not None and x.ndim != ndim:
            layout = {2: " (N, features)", 4: " (N, C, H, W)"}.get(ndim, "")
            raise ValueError(f"{who}: expected a {ndim}-d input{layout}, got shape {x.shape}")
        if x.size == 0:
            raise ValueError(f"{who}: expected a non-empty input, got shape {x.shape}")
        if channels is not None and x.shape[axis] != channels:
            kind = "channels" if x.ndim == 4 else "features"
            raise ValueError(f"{who}: expected input with {channels} {kind}, got {x.shape[axis]} "
                             f"(input shape {x.shape})")
        return np.asarray(x, order="C")  # keeps a 0-d input 0-d

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if name in d.get("_parametrizations", ()):
            raise AttributeError(_parametrized_message(self, name))
        params, modules, buffers = d.get("_parameters"), d.get("_modules"), d.get("_buffers")
        if isinstance(value, (Parameter, Module)) and params is None:
            raise AttributeError(f"cannot assign '{name}' before Module.__init__() was called")
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' "
                                "(Parameter or None expected)")
            params[name] = None
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                "(Module or None expected)")
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                                "(numpy.ndarray or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            entries = d.get(store)
            if entries is not None and name in entries:
                return entries[name]
        chain = d.get("_parametrizations", {}).get(name)
        if chain is not None:  # the parametrized value, read-only: writes would be lost
            value = np.ascontiguousarray(chain.forward()).view()
            value.flags.writeable = False
            return value
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if name in d.get(store, ()):
                del d[store][name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        d = self.__dict__
        if name in d["_parametrizations"]:
            raise AttributeError(_parametrized_message(self, name))
        d.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            d[store].pop(name, None)
        d["_non_persistent"].discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter '{name}': expected a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """A non-trainable array that belongs to the state (e.g. BatchNorm running statistics);
        ``persistent=False`` keeps it out of ``state_dict``."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"buffer '{name}': expected a numpy.ndarray or None, got {type(array).__name__}")
        self._forget(name)
        self._buffers[name] = array
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"child '{name}': expected a Module or None, got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    # ------------------------------------------------------------------ parametrized tensors
    # A layer that lists a parameter in ``_parametrizable`` computes with ``_tensor(name)`` once per
    # forward, keeps that value for backward, and accumulates its gradient through
    # ``_grad_sink`` / ``_grad_done``. Without a parametrization each is one dict lookup.
    _parametrizable: tuple = ()

    def _tensor(self, name: str) -> np.ndarray:
        """The array to compute with: the parameter's data, or its parametrized value."""
        chain = self.__dict__["_parametrizations"].get(name)
        return self._parameters[name].data if chain is None else chain.forward()

    def _grad_sink(self, name: str, value: np.ndarray) -> np.ndarray:
        """Where backward accumulates d(value): the parameter's grad, or, when parametrized, a
        zeroed array that ``_grad_done`` carries back to the original parameter."""
        chain = self.__dict__["_parametrizations"].get(name)
        return self._parameters[name].grad if chain is None else np.zeros_like(value)

    def _grad_done(self, name: str, sink: np.ndarray) -> None:
        chain = self.__dict__["_parametrizations"].get(name)
        if chain is not None:
            chain.backward(sink)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "", _memo: set | None = None) -> Iterator[tuple[str, Module]]:
        memo = set() if _memo is None else _memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, store: str, prefix: str, recurse: bool):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs, each parameter once, names as in PyTorch."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every child (recursively) and then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0.0)

    # ------------------------------------------------------------------ state
    def _state_entries(self, prefix: str = "") -> "OrderedDict[str, np.ndarray]":
        """Name -> the live array (not a copy) for every state_dict entry."""
        out = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p.data
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b
        for name, child in self._modules.items():
            if child is not None:
                out.update(child._state_entries(f"{prefix}{name}."))
        return out

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and persistent buffer, keyed by PyTorch-style names."""
        return OrderedDict((k, v.copy()) for k, v in self._state_entries().items())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values in (numpy arrays, or anything ``numpy.asarray`` accepts, e.g. CPU torch
        tensors). Shapes must match; with ``strict`` every key must match too. Nothing is
        copied unless every entry checks out. Returns ``(missing_keys, unexpected_keys)``."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}")
        own = self._state_entries()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing key(s): " + ", ".join(repr(k) for k in missing))
            if unexpected:
                parts.append("unexpected key(s): " + ", ".join(repr(k) for k in unexpected))
            raise StateDictError(f"error loading state_dict into {type(self).__name__}: " + "; ".join(parts))
        staged = []
        for key, dst in own.items():
            if key not in state_dict:
                continue
            src = state_dict[key]
            if isinstance(src, Parameter):
                src = src.data
            try:
                src = np.asarray(src)
            except Exception as e:  # e.g. a tensor that needs .detach()
                raise TypeError(f"state_dict['{key}']: cannot convert {type(state_dict[key]).__name__} "
                                f"to a numpy array ({e})") from None
            if src.shape != dst.shape:
                raise ValueError(f"size mismatch for '{key}': got an array of shape {src.shape}, "
                                 f"the shape in this model is {dst.shape}")
            if src.dtype.kind not in "fiub":
                raise TypeError(f"state_dict['{key}']: expected a numeric array, got dtype {src.dtype}")
            staged.append((dst, src))
        for dst, src in staged:
            np.copyto(dst, src, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        if not self._modules and len(lines) <= 1:
            return f"{type(self).__name__}({extra})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def check_module(name: str, v) -> Module:
    """`v` is an edgeopt.nn.Module (a model or a layer); for the public API's argument checks."""
    if not isinstance(v, Module):
        raise TypeError(f"{name}: expected an edgeopt.nn.Module, got {show_value(v)} ({type(v).__name__})")
    return v

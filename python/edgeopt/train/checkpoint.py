"""Checkpoints: model + optimizer state + callbacks' state + progress in one .npz, written
atomically (temp file in the same folder, fsync, rename), so a crash mid-save never corrupts the
last good checkpoint.

A checkpoint file is untrusted on load: its metadata JSON is bounded in size and depth, the fields
``fit`` reads back (epoch, history, input_norm) are checked, and any problem is a ValueError naming
the file."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile

import numpy as np

from .._check import check_instances, check_path
from ..nn.module import check_module
from .._io import MAX_JSON_BYTES, MAX_JSON_DEPTH, atomic_write, json_depth, parse_json
from ..optim import Optimizer
from .callbacks import Callback, call
from .history import History


def _check_args(path, model, optimizer) -> str:
    """The path, and the model and optimizer when given."""
    if model is not None:
        check_module("model", model)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected None or an edgeopt.optim.Optimizer, got {type(optimizer).__name__}")
    return check_path("path", path)


def save_checkpoint(path: str, model, optimizer=None, meta: dict | None = None, callbacks=()) -> None:
    """callbacks: train.Callback objects whose state_dict() is saved, with their class names."""
    path = _check_args(path, check_module("model", model), optimizer)  # model required here
    callbacks = check_instances("callbacks", callbacks, Callback, "edgeopt.train.Callback")
    arrays = {f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()}
    if optimizer is not None:
        for k, v in _flatten(optimizer.state_dict()).items():
            arrays[f"optim/{k}"] = v
    states = []
    for i, cb in enumerate(callbacks):
        state = call(i, cb, "state_dict")
        _check_state(state, f"callbacks[{i}] ({type(cb).__name__}).state_dict()")
        states.append({"class": type(cb).__name__, "state": state})
    arrays.update(_flatten(states, "callbacks/"))
    arrays["meta"] = np.frombuffer(_encode_meta(meta), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str, model=None, optimizer=None, callbacks=None) -> dict:
    """Restore model (and optimizer) state from `path`; returns the saved metadata.

    callbacks: None to leave callbacks alone, or the train.Callback objects to restore: the k-th
    callback of a class takes the state saved by the k-th of that class. A saved non-empty state
    that no callback takes is an error (a resume would silently differ); a callback with no saved
    state keeps its own (one added on resume starts fresh)."""
    path = _check_args(path, model, optimizer)
    if callbacks is not None:
        callbacks = check_instances("callbacks", callbacks, Callback, "edgeopt.train.Callback")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint: no file at {path!r}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, MemoryError) as e:
        # MemoryError: an array header claiming more elements than the file could hold
        raise ValueError(f"checkpoint {path!r} is corrupted or not an edgeopt checkpoint: "
                         f"{type(e).__name__}: {e}") from None
    if "meta" not in data:
        raise ValueError(f"checkpoint {path!r} has no metadata: not an edgeopt checkpoint")
    raw = data["meta"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"checkpoint {path!r}: metadata must be a 1-D uint8 array, got {raw.dtype} {raw.shape}")
    meta = parse_json(raw.tobytes(), f"checkpoint {path!r}")
    _check_meta(meta, path)
    optim_state = None
    if optimizer is not None:  # parsed before the model is touched, so a bad file changes nothing
        optim_state = _unflatten({k[6:]: v for k, v in data.items() if k.startswith("optim/")}, path)
    if callbacks is not None:
        restore = _match_callbacks(callbacks, _callback_states(data, path), path)
        for i, state in restore:  # first: user code is the likeliest to refuse
            call(i, callbacks[i], "load_state_dict", state)
    if model is not None:
        model.load_state_dict({k[6:]: v for k, v in data.items() if k.startswith("model/")})
    if optimizer is not None:
        optimizer.load_state_dict(optim_state)
    return meta


def _encode_meta(meta) -> bytes:
    """The metadata JSON, refused here if load_checkpoint would refuse it."""
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta: expected a dict or None, got {type(meta).__name__}")
    try:
        raw = json.dumps(meta or {}).encode()
    except RecursionError:
        raise ValueError(f"meta: nested more than {MAX_JSON_DEPTH} levels deep") from None
    if len(raw) > MAX_JSON_BYTES:
        raise ValueError(f"meta: {len(raw):,} bytes of JSON (limit {MAX_JSON_BYTES:,})")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ValueError(f"meta: nested more than {MAX_JSON_DEPTH} levels deep")
    return raw


def _check_meta(meta, path) -> None:
    """The fields fit() reads back on resume, when present."""
    def bad(field, expected, got):
        r = repr(got)
        raise ValueError(f"checkpoint {path!r}: metadata {field!r}: expected {expected}, got "
                         f"{r if len(r) <= 80 else r[:77] + '...'}")

    def number(v):  # a real number Python can format as a float (inf / nan included)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        try:
            float(v)
        except OverflowError:
            return False
        return True

    if not isinstance(meta, dict):
        bad("(root)", "a JSON object", type(meta).__name__)
    if "epoch" in meta:
        e = meta["epoch"]
        if isinstance(e, bool) or not isinstance(e, int) or not 0 <= e < 2**31:
            bad("epoch", "an integer in [0, 2**31)", e)
    if "history" in meta:
        h = meta["history"]
        fields = {f.name for f in dataclasses.fields(History)}
        if not isinstance(h, dict) or not set(h) <= fields:
            bad("history", f"an object with keys among {sorted(fields)}", h)
        for k, v in h.items():
            # measurements: any number (a diverged value may be inf or nan)
            if not isinstance(v, list) or not all(number(x) for x in v):
                bad(f"history.{k}", "a list of numbers", v)
    if meta.get("input_norm") is not None:
        n = meta["input_norm"]
        ok = (isinstance(n, dict) and isinstance(n.get("mean"), list) and isinstance(n.get("std"), list)
              and len(n["mean"]) == len(n["std"]) >= 1
              and all(number(x) and math.isfinite(x) for x in n["mean"] + n["std"]) and all(x > 0 for x in n["std"]))
        if not ok:
            bad("input_norm", "{'mean': [...], 'std': [...]} of equal length, finite, std > 0", n)


def _check_state(state, where: str) -> None:
    """A callback's state must survive the npz round trip: a dict with plain str keys, holding
    numbers, strings, arrays, lists, dicts or None (tuples come back as lists)."""
    def walk(v, at):
        if isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str) or not k or "/" in k or k.startswith("__"):
                    raise ValueError(f"{where}: key {k!r} at {at or 'the top'}: expected a non-empty str "
                                     "without '/' that does not start with '__'")
                walk(item, f"{at}[{k!r}]")
        elif isinstance(v, (list, tuple)):
            for j, item in enumerate(v):
                walk(item, f"{at}[{j}]")
        elif v is not None and np.asarray(v).dtype.kind not in "biufcU":
            raise TypeError(f"{where}: {at or 'the state'} is a {type(v).__name__}: expected numbers, "
                            "strings, arrays, lists, dicts or None")

    if not isinstance(state, dict):
        raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
    walk(state, "")


def _callback_states(data: dict, path) -> list:
    """The saved [{'class': name, 'state': dict}, ...] (none in a checkpoint written without them)."""
    flat = {k[10:]: v for k, v in data.items() if k.startswith("callbacks/")}
    states = _unflatten(flat, path, "callback state") if flat else []
    if not isinstance(states, list) or not all(isinstance(s, dict) and isinstance(s.get("class"), str)
                                               and isinstance(s.get("state"), dict) for s in states):
        raise ValueError(f"checkpoint {path!r}: callback state is not a list of {{'class': str, 'state': dict}}")
    return states


def _match_callbacks(callbacks, states, path) -> list:
    """[(index into callbacks, saved state)]: the k-th saved state of a class to the k-th callback
    of that class."""
    by_class: dict = {}
    for i, cb in enumerate(callbacks):
        by_class.setdefault(type(cb).__name__, []).append(i)
    seen: dict = {}
    out = []
    for s in states:
        k = seen[s["class"]] = seen.get(s["class"], -1) + 1
        owners = by_class.get(s["class"], [])
        if k < len(owners):
            out.append((owners[k], s["state"]))
        elif s["state"]:
            raise ValueError(f"callbacks: checkpoint {path!r} holds the state of {k + 1} {s['class']} callback(s), "
                             f"got {len(owners)}; resume with the callbacks the run was started with")
    return out


# State dicts are nested (lists of per-parameter dicts, scalars); npz holds flat arrays.
def _flatten(obj, prefix=""):
    out = {}
    if isinstance(obj, dict):
        if not obj:  # else an empty dict (an optimizer that has not stepped yet) would vanish
            out[f"{prefix}__empty__"] = np.array(0)
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}/"))
    elif isinstance(obj, (list, tuple)):
        out[f"{prefix}__len__"] = np.array(len(obj))
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}/"))
    elif obj is None:
        out[f"{prefix}__none__"] = np.array(0)
    else:
        out[prefix.rstrip("/")] = np.asarray(obj)
    return out


def _unflatten(flat: dict, path=None, part: str = "optimizer state"):
    """Inverse of _flatten; ValueError naming the file for entries _flatten could not have made."""
    def bad(what):
        raise ValueError(f"checkpoint {path!r}: {part} {what}")

    tree: dict = {}
    for key, v in flat.items():
        parts = key.split("/")
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                bad(f"entry {key!r} is both a value and a folder")
        if parts[-1] in node:
            bad(f"entry {key!r} is both a value and a folder")
        node[parts[-1]] = v
    return _rebuild(tree, bad)


def _rebuild(node, bad):
    if not isinstance(node, dict):
        return node.item() if node.ndim == 0 else node
    if "__none__" in node:
        return None
    if "__empty__" in node:
        return {}
    if "__len__" in node:
        n = node["__len__"]
        if n.ndim != 0 or n.dtype.kind not in "iu" or not 0 <= int(n) < len(node):
            bad(f"list length {n!r} out of range")
        items = [node.get(str(i)) for i in range(int(n))]
        if any(v is None for v in items):
            bad("list with missing items")
        return [_rebuild(v, bad) for v in items]
    return {k: _rebuild(v, bad) for k, v in node.items()}

"""Checkpoints: model + optimizer state + progress in one .npz, written atomically (temp file in
the same folder, fsync, rename), so a crash mid-save never corrupts the last good checkpoint.

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

from .._check import check_module, check_path
from .._io import MAX_JSON_BYTES, MAX_JSON_DEPTH, atomic_write, json_depth, parse_json
from ..optim import Optimizer


def _check_args(path, model, optimizer) -> str:
    """The path, and the model and optimizer when given."""
    if model is not None:
        check_module("model", model)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected None or an edgeopt.optim.Optimizer, got {type(optimizer).__name__}")
    return check_path("path", path)


def save_checkpoint(path: str, model, optimizer=None, meta: dict | None = None) -> None:
    path = _check_args(path, check_module("model", model), optimizer)  # model required here
    arrays = {f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()}
    if optimizer is not None:
        for k, v in _flatten(optimizer.state_dict()).items():
            arrays[f"optim/{k}"] = v
    arrays["meta"] = np.frombuffer(_encode_meta(meta), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str, model=None, optimizer=None) -> dict:
    """Restore model (and optimizer) state from `path`; returns the saved metadata."""
    path = _check_args(path, model, optimizer)
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
        from .fit import History

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


# Optimizer state dicts are nested (lists of per-parameter dicts, scalars); npz holds flat arrays.
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


def _unflatten(flat: dict, path=None):
    """Inverse of _flatten; ValueError naming the file for entries _flatten could not have made."""
    def bad(what):
        raise ValueError(f"checkpoint {path!r}: optimizer state {what}")

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

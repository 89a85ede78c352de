"""Checkpoints: model + optimizer state + progress in one .npz, written atomically (temp file in
the same folder, fsync, rename), so a crash mid-save never corrupts the last good checkpoint."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .._io import atomic_write


def save_checkpoint(path: str, model, optimizer=None, meta: dict | None = None) -> None:
    arrays = {f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()}
    if optimizer is not None:
        for k, v in _flatten(optimizer.state_dict()).items():
            arrays[f"optim/{k}"] = v
    arrays["meta"] = np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str, model=None, optimizer=None) -> dict:
    """Restore model (and optimizer) state from `path`; returns the saved metadata."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint: no file at {path!r}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"checkpoint {path!r} is corrupted or not an edgeopt checkpoint: {e}") from None
    if "meta" not in data:
        raise ValueError(f"checkpoint {path!r} has no metadata: not an edgeopt checkpoint")
    meta = json.loads(bytes(data["meta"]).decode())
    if model is not None:
        model.load_state_dict({k[6:]: v for k, v in data.items() if k.startswith("model/")})
    if optimizer is not None:
        optimizer.load_state_dict(_unflatten({k[6:]: v for k, v in data.items() if k.startswith("optim/")}))
    return meta


# Optimizer state dicts are nested (lists of per-parameter dicts, scalars); npz holds flat arrays.
def _flatten(obj, prefix=""):
    out = {}
    if isinstance(obj, dict):
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


def _unflatten(flat: dict):
    tree: dict = {}
    for key, v in flat.items():
        parts = key.split("/")
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return _rebuild(tree)


def _rebuild(node):
    if not isinstance(node, dict):
        return node.item() if node.ndim == 0 else node
    if "__none__" in node:
        return None
    if "__len__" in node:
        return [_rebuild(node[str(i)]) for i in range(int(node["__len__"]))]
    return {k: _rebuild(v) for k, v in node.items()}

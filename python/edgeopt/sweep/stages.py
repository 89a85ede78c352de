"""Shared training stages: trained checkpoints that many cells start from, made once.

An fp32 baseline per (model, dataset, budget, seed, threads, edgeopt version) feeds every
technique of that model; a parent technique's output (PRN's pruned model) feeds its children
(PRQ). Each is a checkpoint ``<kind>-<key>.npz`` in the store folder, with a sidecar
``<kind>-<key>.json`` holding its sha256 (the content address), how long it took to make and the
configuration it came from. A checkpoint whose bytes no longer match its sha256 is made again.

Several processes (a process pool, Dask workers on one machine or a shared folder) may ask for the
same stage at once: an exclusive lock file makes one of them train it while the others wait, then
load it. Files are written atomically (edgeopt._io), so a killed worker leaves no partial stage.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time

from .._io import atomic_write_bytes, parse_json
from ..train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["StageStore"]


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: str):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class StageStore:
    """Checkpoints of trained stages under `root` (created when missing)."""

    def __init__(self, root):
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(self.root, exist_ok=True)

    def _paths(self, kind: str, key: str):
        base = os.path.join(self.root, f"{kind}-{key}")
        return base + ".npz", base + ".json", base + ".lock"

    def _valid(self, ckpt: str, side: str):
        """The sidecar record if the checkpoint is there and matches its sha256, else None."""
        if not (os.path.exists(ckpt) and os.path.exists(side)):
            return None
        try:
            with open(side, "rb") as f:
                rec = parse_json(f.read(), side)
        except (ValueError, OSError):
            return None
        if not isinstance(rec, dict) or rec.get("sha256") != file_sha256(ckpt):
            return None
        return rec

    def get(self, kind: str, key: str, config: dict, new_model, make, stage=lambda text: None, extra=dict):
        """(model, record): the stage's trained model and {key, kind, path, sha256, seconds,
        config, **extra()}.

        new_model() builds an untrained model of the right architecture (to load a checkpoint
        into); make() trains one and returns it, called only when the stage is missing; extra()
        (JSON-able, read after make) is kept in the record, e.g. how the stage deploys."""
        ckpt, side, lock = self._paths(kind, key)
        with _locked(lock):
            rec = self._valid(ckpt, side)
            if rec is not None:
                stage(f"loading {kind}")
                model = new_model()
                meta = load_checkpoint(ckpt, model)
                model.input_norm = meta.get("input_norm")
            else:
                stage(f"training {kind}")
                t0 = time.perf_counter()
                model = make()
                seconds = time.perf_counter() - t0
                save_checkpoint(ckpt, model, meta={"kind": kind, "key": key, "input_norm": model.input_norm})
                rec = {"key": key, "kind": kind, "path": ckpt, "sha256": file_sha256(ckpt), "seconds": seconds,
                       "config": config, **extra()}
                atomic_write_bytes(side, json.dumps(rec, sort_keys=True).encode())
        return model, rec

"""Atomic file writes: every file edgeopt writes (checkpoints, .edgeopt engines, ONNX exports)
goes to a temp file in the same folder, is fsynced, then renamed over the target, so a crash or an
exception never leaves a half-written file in its place (an existing file stays as it was)."""
from __future__ import annotations

import os
import tempfile


def atomic_write(path, write) -> None:
    """Call write(binary file object) on a temp file beside `path`, then rename it to `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))

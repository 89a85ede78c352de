"""The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), optionally gzipped.

Header: two zero bytes, a type byte (0x08 = unsigned byte, the only type these datasets use), the
number of dimensions, then each dimension as a big-endian uint32; the data follows in C order.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from typing import Optional

import numpy as np

from .._check import check_int, check_path

_UBYTE = 0x08
_CHUNK = 1 << 20


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _read_exact(f, n: int, path: str, what: str) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise ValueError(f"{path}: truncated IDX file: {what} needs {n} bytes, found {len(b)}")
    return b


def read_idx(path, ndim: Optional[int] = None) -> np.ndarray:
    """The uint8 array stored in an IDX file (`.gz` is decompressed on the fly).

    Raises FileNotFoundError if the file is missing and ValueError, naming the file, if it is not
    an unsigned-byte IDX file (with `ndim` dimensions when given), is truncated or has extra bytes,
    or if the gzip stream is corrupted.
    """
    path = check_path("path", path)
    if ndim is not None:
        ndim = check_int("ndim", ndim, 1, 255)  # one header byte
    try:
        with _open(path) as f:
            magic = _read_exact(f, 4, path, "the magic number")
            if magic[0] != 0 or magic[1] != 0 or magic[2] != _UBYTE or magic[3] == 0:
                raise ValueError(f"{path}: not an unsigned-byte IDX file: magic number 0x{magic.hex()}, "
                                 f"expected 0x000008NN (NN = number of dimensions)")
            nd = magic[3]
            if ndim is not None and nd != ndim:
                raise ValueError(f"{path}: expected an IDX file with {ndim} dimensions (magic "
                                 f"0x{2048 + ndim:08x}), got {nd} (magic 0x{magic.hex()})")
            dims = struct.unpack(f">{nd}I", _read_exact(f, 4 * nd, path, "the dimensions"))
            total = 1
            for d in dims:
                total *= d
            # Read in chunks rather than trusting the header for one big allocation: a corrupted
            # size field must give an error, not a multi-gigabyte buffer.
            buf = bytearray()
            while len(buf) < total:
                chunk = f.read(min(_CHUNK, total - len(buf)))
                if not chunk:
                    raise ValueError(f"{path}: truncated IDX file: the header announces {dims} = {total} "
                                     f"bytes of data, found {len(buf)}")
                buf += chunk
            if f.read(1):
                raise ValueError(f"{path}: IDX file has more data than its header announces "
                                 f"({dims} = {total} bytes)")
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: corrupted or truncated gzip file ({e})") from e
    return np.frombuffer(buf, dtype=np.uint8).reshape(dims)

"""The ``.edgeopt`` file: the writer (the reader is the C++ loader, cpp/src/runtime/format.cc).

A file is a 64-byte header, a section table and three sections (little-endian throughout; byte
layout in cpp/src/runtime/README.md):

  META   JSON (UTF-8): scheme, classes, input normalization, edgeopt version, ...
  GRAPH  tensor table (dtype, layout, rank, C, H, W, scale, zero point per tensor) and the ops in
         execution order (type id, name, input tensor ids, output tensor id, typed attributes)
  BLOBS  weight blobs in deployed form (f32 / f16 / int8 / ... tags, see BlobType), 64-byte aligned

Every section carries a CRC32. ``ModelBuilder`` assembles a model op by op and serializes it
deterministically (same model -> same bytes), which is what ``compile`` and the int8 / sparse /
binary lowerings use.
"""
from __future__ import annotations

import dataclasses
import json
import struct
import zlib

import numpy as np

from .. import _core

MAGIC = b"EDGEOPT\0"
VERSION = 1
HEADER_BYTES, SECTION_BYTES, BLOB_ENTRY_BYTES, TENSOR_BYTES = 64, 32, 64, 32
SECTION_META, SECTION_GRAPH, SECTION_BLOBS = 1, 2, 3


class BlobType:
    """Blob dtype tags (cpp/src/runtime/op.h BlobType). Dense types hold prod(dims) elements."""
    F32, F16, I8, U8, I32 = 1, 2, 3, 4, 5
    I4, I2 = 6, 7   # bit-packed codes: dims[0] rows of prod(dims[1:]) codes, ceil(codes * bits / 8) bytes each
    I1 = 8          # the same with binary codes (bit 1 = +1, 0 = -1)
    # reserved encodings, byte layout defined by the ops that read them:
    SPARSE_F32, BITPACKED_B1, CLUSTERED, SPARSE_I8, OPAQUE = 16, 17, 18, 19, 31

    NUMPY = {F32: np.float32, F16: np.float16, I8: np.int8, U8: np.uint8, I32: np.int32}


class DType:
    F32, U8, I8, I32 = 1, 2, 3, 4


class Layout:
    NCHW, NHWC = 1, 2


class OpType:
    """Op type ids, read from the runtime's op table (cpp/src/runtime/op.h OpType, the one list):
    ``OpType.CONV2D``, ``OpType.QS8_CONV2D``, ``OpType.SPARSE_LINEAR``, ... as the C++ enumerator
    in upper case. 1..99 fp32, 100..199 int8-full, 200..299 sparse, 300..399 binary / multi-bit,
    400..499 clustered."""


for _id, _name in _core.runtime_engine.runtime_op_types():
    setattr(OpType, _name.upper(), int(_id))
del _id, _name


ACTIVATION = {"none": 0, "relu": 1, "relu6": 2, "hardswish": 3, "hardsigmoid": 4, "sigmoid": 5}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One image of a tensor: (c,) for rank 2, (c, h, w) for rank 4; quantized tensors carry
    real = scale * (q - zero_point)."""
    c: int
    h: int = 1
    w: int = 1
    rank: int = 4
    dtype: int = DType.F32
    layout: int = Layout.NCHW
    scale: float = 1.0
    zero_point: int = 0

    @classmethod
    def of_shape(cls, shape, **kw) -> "TensorInfo":
        """From a traced shape (N, C, H, W) or (N, F)."""
        shape = tuple(int(s) for s in shape)
        if len(shape) == 4:
            return cls(shape[1], shape[2], shape[3], 4, **kw)
        if len(shape) == 2:
            return cls(shape[1], 1, 1, 2, **kw)
        raise ValueError(f"tensor shape {shape}: expected (N, C, H, W) or (N, F)")

    def pack(self) -> bytes:
        return struct.pack("<BBBBiiifiQ", self.dtype, self.layout, self.rank, 0, self.c, self.h, self.w,
                           self.scale, self.zero_point, 0)


@dataclasses.dataclass(frozen=True)
class BlobRef:
    """An op attribute that names a weight blob."""
    id: int


@dataclasses.dataclass
class _Blob:
    type: int
    dims: tuple
    data: bytes


@dataclasses.dataclass
class _Op:
    type: int
    name: str
    inputs: list
    output: int
    attrs: dict


class ModelBuilder:
    """Assemble a runtime model: tensors, weight blobs and ops in execution order.

    >>> b = ModelBuilder(TensorInfo(3, 32, 32))
    >>> w = b.add_blob(weight.astype(np.float16))
    >>> y = b.add_op(OpType.CONV2D, "conv1", [b.input], TensorInfo(16, 32, 32),
    ...              {"weight": w, "stride": (1, 1), "padding": (1, 1), "groups": 1})
    >>> data = b.to_bytes(y, metadata={...})

    Attribute values: int / bool / sequence of ints -> ints; float / sequence of floats -> floats;
    str -> string; BlobRef -> blob id. None values are left out.
    """

    def __init__(self, input_info: TensorInfo):
        self.tensors = [input_info]
        self.blobs: list = []
        self.ops: list = []
        self.input = 0
        self.metadata: dict = {}  # merged into the file's metadata by compile

    def add_tensor(self, info: TensorInfo) -> int:
        self.tensors.append(info)
        return len(self.tensors) - 1

    def add_blob(self, array=None, *, type: int | None = None, dims=None, data: bytes | None = None) -> BlobRef:
        """A dense blob from a numpy array (its dtype picks the tag), or raw bytes with an explicit
        type tag and dims for the reserved encodings."""
        if array is not None:
            a = np.ascontiguousarray(array)
            tags = {np.dtype(v): k for k, v in BlobType.NUMPY.items()}
            if a.dtype not in tags:
                raise TypeError(f"add_blob: unsupported dtype {a.dtype}; expected one of "
                                f"{sorted(str(np.dtype(v)) for v in BlobType.NUMPY.values())}")
            if a.ndim > 4:
                raise ValueError(f"add_blob: at most 4 dims, got shape {a.shape}")
            self.blobs.append(_Blob(tags[a.dtype], tuple(int(d) for d in a.shape), a.astype(a.dtype.newbyteorder("<")).tobytes()))
        else:
            if type is None or data is None:
                raise ValueError("add_blob: give an array, or type= and data= (and dims=)")
            self.blobs.append(_Blob(int(type), tuple(int(d) for d in (dims or ())), bytes(data)))
        return BlobRef(len(self.blobs) - 1)

    def add_op(self, type: int, name: str, inputs, output: TensorInfo, attrs: dict | None = None) -> int:
        """Append an op; returns the id of its (new) output tensor."""
        out = self.add_tensor(output)
        self.ops.append(_Op(int(type), str(name), [int(i) for i in inputs], out, dict(attrs or {})))
        return out

    # ------------------------------------------------------------------ serialization
    def _graph_bytes(self, output: int) -> bytes:
        parts = [struct.pack("<IIII", len(self.tensors), len(self.ops), self.input, output)]
        parts += [t.pack() for t in self.tensors]
        for op in self.ops:
            name = _clean_name(op.name)
            attrs = [(k, v) for k, v in op.attrs.items() if v is not None]
            parts.append(struct.pack("<IIiHH", op.type, len(op.inputs), op.output, len(name), len(attrs)))
            parts.append(name)
            parts.append(struct.pack(f"<{len(op.inputs)}i", *op.inputs))
            for key, value in attrs:
                parts.append(_attr_bytes(op.name, key, value))
        return b"".join(parts)

    def _blob_bytes(self) -> bytes:
        table_end = _align(8 + BLOB_ENTRY_BYTES * len(self.blobs))
        entries, datas, at = [], [], table_end
        for b in self.blobs:
            dims = list(b.dims) + [0] * (4 - len(b.dims))
            entries.append(struct.pack("<BBHI4qQQQ", b.type, len(b.dims), 0, 0, *dims, at, len(b.data), 0))
            datas.append(b.data + bytes(_align(len(b.data)) - len(b.data)))
            at += _align(len(b.data))
        head = struct.pack("<II", len(self.blobs), 0) + b"".join(entries)
        return head + bytes(table_end - len(head)) + b"".join(datas)

    def to_bytes(self, output: int, metadata: dict | None = None) -> bytes:
        meta = json.dumps(metadata or {}, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return assemble([(SECTION_META, meta), (SECTION_GRAPH, self._graph_bytes(output)),
                         (SECTION_BLOBS, self._blob_bytes())])


def _clean_name(name: str) -> bytes:
    """The loader accepts op names of at most 512 bytes of UTF-8 without control characters: those
    become '?' and the name is cut on a character boundary."""
    name = "".join("?" if ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 else c for c in name)
    return name.encode("utf-8", "replace")[:512].decode("utf-8", "ignore").encode("utf-8")


def _align(n: int, a: int = 64) -> int:
    return (n + a - 1) // a * a


def _attr_bytes(op: str, key: str, value) -> bytes:
    k = key.encode("utf-8")
    if not 1 <= len(k) <= 64:
        raise ValueError(f"op {op!r}: attribute key {key!r} must be 1..64 bytes")
    if isinstance(value, BlobRef):
        return struct.pack("<HBBI", len(k), 4, 0, 1) + k + struct.pack("<I", value.id)
    if isinstance(value, str):
        s = value.encode("utf-8")
        return struct.pack("<HBBI", len(k), 3, 0, len(s)) + k + s
    seq = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if all(isinstance(v, (bool, int, np.integer)) for v in seq):
        return struct.pack("<HBBI", len(k), 1, 0, len(seq)) + k + struct.pack(f"<{len(seq)}q", *[int(v) for v in seq])
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in seq):
        return struct.pack("<HBBI", len(k), 2, 0, len(seq)) + k + struct.pack(f"<{len(seq)}d", *[float(v) for v in seq])
    raise TypeError(f"op {op!r}: attribute {key!r} has unsupported value {value!r}")


def assemble(sections) -> bytes:
    """Header + section table + 64-byte aligned sections [(type, payload)], with CRCs."""
    n = len(sections)
    at = _align(HEADER_BYTES + SECTION_BYTES * n)
    table, body = [], []
    for typ, payload in sections:
        table.append(struct.pack("<IIQQII", typ, 0, at, len(payload), zlib.crc32(payload), 0))
        padded = payload + bytes(_align(len(payload)) - len(payload))
        body.append(padded)
        at += len(padded)
    table_bytes = b"".join(table)
    start = _align(HEADER_BYTES + SECTION_BYTES * n)
    head = MAGIC + struct.pack("<IIQI", VERSION, n, at, zlib.crc32(table_bytes))
    head += struct.pack("<I", zlib.crc32(head)) + bytes(HEADER_BYTES - len(head) - 4)
    pad = bytes(start - HEADER_BYTES - len(table_bytes))
    return head + table_bytes + pad + b"".join(body)


def rewrite_checksums(data: bytes) -> bytes:
    """Recompute the header, table and section CRCs (and the size field) of a possibly mutated file
    where its table can still be read. For fuzzing: mutants then reach the parsers behind the
    checksums. Returns the input unchanged when the table is unreadable."""
    b = bytearray(data)
    if len(b) < HEADER_BYTES:
        return bytes(b)
    n = struct.unpack_from("<I", b, 12)[0]
    if n > 64 or HEADER_BYTES + SECTION_BYTES * n > len(b):
        return bytes(b)
    struct.pack_into("<Q", b, 16, len(b))
    for i in range(n):
        e = HEADER_BYTES + SECTION_BYTES * i
        _, _, off, size, _, _ = struct.unpack_from("<IIQQII", b, e)
        if off <= len(b) and size <= len(b) - off:
            struct.pack_into("<I", b, e + 24, zlib.crc32(bytes(b[off:off + size])))
    struct.pack_into("<I", b, 24, zlib.crc32(bytes(b[HEADER_BYTES:HEADER_BYTES + SECTION_BYTES * n])))
    struct.pack_into("<I", b, 28, zlib.crc32(bytes(b[:28])))
    return bytes(b)


def read_sections(data: bytes) -> dict:
    """{section type: payload bytes} of a well-formed file (for tools and tests; no validation
    beyond bounds — the C++ loader is the validating reader)."""
    n = struct.unpack_from("<I", data, 12)[0]
    out = {}
    for i in range(n):
        typ, _, off, size, _, _ = struct.unpack_from("<IIQQII", data, HEADER_BYTES + SECTION_BYTES * i)
        out[typ] = bytes(data[off:off + size])
    return out

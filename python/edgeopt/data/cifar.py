"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009), https://www.cs.toronto.edu/~kriz/cifar.html

Read from the official distributions, extracted under `root`:
- CIFAR-10 python:  cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
- CIFAR-10 binary:  cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt}
- CIFAR-100 python: cifar-100-python/{train, test, meta}
Python batches are pickled dicts {b"data": uint8 (N, 3072), b"labels" | b"fine_labels",
b"coarse_labels": [int], ...}; a row holds the 1024 red, then green, then blue pixels of a 32x32
image in row-major order, so it reshapes to (3, 32, 32) directly. A binary record is one label
byte followed by the same 3072 bytes.

Pickle can run code while loading; these files come from a known source, but the reader still
only lets the unpickler build plain containers and numpy arrays (anything else is an error), and
checks keys, dtypes, shapes and label ranges, raising ValueError naming the file.
"""
from __future__ import annotations

import os
import pickle

import numpy as np

from .._check import check_bool, check_choice, check_path
from .dataset import Dataset
from .download import Archive, fetch_and_extract

_ARCHIVES = {
    "cifar10": Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                       "cifar-10-batches-py"),
    "cifar100": Archive("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                        "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                        "cifar-100-python"),
}
_BIN10_FOLDER = "cifar-10-batches-bin"
_IMAGE_BYTES = 3 * 32 * 32

# The globals a CIFAR pickle may name: numpy's array reconstruction (under its numpy 1 and 2 module
# names), numpy scalars, and _codecs.encode (how protocol 2 stores bytes written by Python 3).
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.int64(0).__reduce__()[0]
_ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _RECONSTRUCT
    _ALLOWED[(_module, "scalar")] = _SCALAR
_ALLOWED[("_codecs", "encode")] = __import__("codecs").encode


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch") from None


def _load_pickle(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
            trailing = f.read(1)
    except OSError:
        raise
    except Exception as e:  # a damaged pickle can fail in many ways; all mean "not a CIFAR batch"
        raise ValueError(f"{path}: corrupted or truncated pickle ({type(e).__name__}: {e})") from e
    if trailing:
        raise ValueError(f"{path}: unexpected data after the pickle")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # Python 2 str keys arrive as bytes with encoding="bytes"; files written by Python 3 have str keys.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _key(path: str, d: dict, key: str):
    if key not in d:
        raise ValueError(f"{path}: missing key {key!r} (found {sorted(map(str, d))})")
    return d[key]


def _labels(path: str, d: dict, key: str, n: int, num_classes: int) -> np.ndarray:
    raw = _key(path, d, key)
    if not isinstance(raw, (list, tuple, np.ndarray)):
        raise ValueError(f"{path}: {key!r} must be a list of ints, got {type(raw).__name__}")
    if isinstance(raw, (list, tuple)) and not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                  for v in raw):
        raise ValueError(f"{path}: {key!r} must be a list of ints")
    y = np.asarray(raw)
    if y.ndim != 1 or len(y) != n or (y.size and y.dtype.kind not in "iu"):
        raise ValueError(f"{path}: {key!r} must hold {n} integer labels (one per image), got "
                         f"{len(y) if y.ndim == 1 else y.shape} of dtype {y.dtype}")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{path}: {key!r}[{i}] = {int(y[i])} is out of range [0, {num_classes})")
    return y


def _images(path: str, d: dict) -> np.ndarray:
    data = _key(path, d, "data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _IMAGE_BYTES:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, {_IMAGE_BYTES}), got {what}")
    return data.reshape(len(data), 3, 32, 32)


def _names(path: str, d: dict, key: str, count: int) -> list[str]:
    raw = _key(path, d, key)
    if not isinstance(raw, (list, tuple)) or len(raw) != count \
            or not all(isinstance(v, (bytes, str)) for v in raw):
        raise ValueError(f"{path}: {key!r} must be a list of {count} class names")
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in raw]


def _require(path: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: the dataset folder is incomplete; delete it and "
                                f"extract the official archive again")
    return path


def _cifar10_py(folder: str) -> tuple[Dataset, Dataset]:
    classes = _names(p := _require(os.path.join(folder, "batches.meta")), _load_pickle(p), "label_names", 10)

    def batch(name):
        path = _require(os.path.join(folder, name))
        d = _load_pickle(path)
        x = _images(path, d)
        return x, _labels(path, d, "labels", len(x), 10)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    xs, ys = zip(*parts)
    xt, yt = batch("test_batch")
    return (Dataset(np.concatenate(xs), np.concatenate(ys), classes, name="cifar10/train"),
            Dataset(np.ascontiguousarray(xt), yt, classes, name="cifar10/test"))


def _read_bin(path: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(_require(path), dtype=np.uint8)
    rec = 1 + _IMAGE_BYTES
    if raw.size == 0 or raw.size % rec:
        raise ValueError(f"{path}: truncated or not a CIFAR-10 binary batch: {raw.size} bytes is not a "
                         f"positive multiple of the {rec}-byte record")
    raw = raw.reshape(-1, rec)
    y = raw[:, 0].astype(np.int64)
    if y.max() >= num_classes:
        i = int(np.argmax(y >= num_classes))
        raise ValueError(f"{path}: record {i} has label {int(y[i])}, out of range [0, {num_classes})")
    return np.ascontiguousarray(raw[:, 1:]).reshape(-1, 3, 32, 32), y


def _cifar10_bin(folder: str) -> tuple[Dataset, Dataset]:
    meta = _require(os.path.join(folder, "batches.meta.txt"))
    with open(meta, "rb") as f:
        classes = [line.strip().decode("utf-8", "replace") for line in f.read().splitlines() if line.strip()]
    if len(classes) != 10:
        raise ValueError(f"{meta}: expected 10 class names, got {len(classes)}")
    parts = [_read_bin(os.path.join(folder, f"data_batch_{i}.bin"), 10) for i in range(1, 6)]
    xs, ys = zip(*parts)
    xt, yt = _read_bin(os.path.join(folder, "test_batch.bin"), 10)
    return (Dataset(np.concatenate(xs), np.concatenate(ys), classes, name="cifar10/train"),
            Dataset(xt, yt, classes, name="cifar10/test"))


def _cifar100_py(folder: str, labels: str) -> tuple[Dataset, Dataset]:
    meta = _load_pickle(p := _require(os.path.join(folder, "meta")))
    fine, coarse = _names(p, meta, "fine_label_names", 100), _names(p, meta, "coarse_label_names", 20)
    classes = fine if labels == "fine" else coarse

    def split(name):
        path = _require(os.path.join(folder, name))
        d = _load_pickle(path)
        x = _images(path, d)
        yf = _labels(path, d, "fine_labels", len(x), 100)
        yc = _labels(path, d, "coarse_labels", len(x), 20)
        return Dataset(np.ascontiguousarray(x), yf if labels == "fine" else yc, classes,
                       name=f"cifar100/{name}")

    return split("train"), split("test")


def _root(root) -> str:
    if root is None:
        root = os.environ.get("EDGEOPT_DATA")
        if not root:
            raise ValueError("root: pass the folder that holds (or should hold) the dataset, "
                             "or set EDGEOPT_DATA")
    return check_path("root", root)


def _has(folder: str, name: str) -> bool:
    return os.path.isfile(os.path.join(folder, name))


def _not_found(what: str, root: str, archive: Archive, layouts: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found under {root}: expected {layouts}. Pass download=True to fetch "
        f"{archive.url} (md5 {archive.md5}), or download it elsewhere and extract it into {root}.")


def cifar10(root=None, download: bool = False) -> tuple[Dataset, Dataset]:
    """(train, test) Datasets: x uint8 (50000 | 10000, 3, 32, 32), y int64, 10 named classes.

    `root` holds the extracted official archive: cifar-10-batches-py/ (python version) or
    cifar-10-batches-bin/ (binary version); `root` may also be that folder itself. If neither is
    there but root/cifar-10-python.tar.gz is, it is md5-checked and extracted; with download=True
    the archive is first fetched from the official URL. root=None uses $EDGEOPT_DATA.
    """
    root = _root(root)
    download = check_bool("download", download)
    archive = _ARCHIVES["cifar10"]
    for folder in (os.path.join(root, archive.folder), root):
        if _has(folder, "data_batch_1"):
            return _cifar10_py(folder)
    for folder in (os.path.join(root, _BIN10_FOLDER), root):
        if _has(folder, "data_batch_1.bin"):
            return _cifar10_bin(folder)
    if download or _has(root, archive.filename):
        return _cifar10_py(fetch_and_extract(archive, root, download))
    raise _not_found("CIFAR-10", root, archive,
                     f"{archive.folder}/data_batch_1..5 or {_BIN10_FOLDER}/data_batch_1..5.bin")


def cifar100(root=None, download: bool = False, labels: str = "fine") -> tuple[Dataset, Dataset]:
    """(train, test) Datasets: x uint8 (50000 | 10000, 3, 32, 32), y int64 with the 100 fine
    labels (labels="fine") or the 20 superclasses (labels="coarse"), named.

    `root` holds cifar-100-python/ (or is it); archive and download handling as in `cifar10`.
    """
    check_choice("labels", labels, ("fine", "coarse"))
    root = _root(root)
    download = check_bool("download", download)
    archive = _ARCHIVES["cifar100"]
    for folder in (os.path.join(root, archive.folder), root):
        if _has(folder, "train") and _has(folder, "meta"):
            return _cifar100_py(folder, labels)
    if download or _has(root, archive.filename):
        return _cifar100_py(fetch_and_extract(archive, root, download), labels)
    raise _not_found("CIFAR-100", root, archive, f"{archive.folder}/train, test, meta")

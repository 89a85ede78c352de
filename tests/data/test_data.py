"""edgeopt.data: the dataset readers (IDX, CIFAR python and binary batches, written here in the
exact official formats), md5-checked downloads, synthetic data and the C++ DataLoader (checked
against a numpy reference of the same gather, normalization, crop and flip)."""
import dataclasses
import gzip
import hashlib
import io
import os
import pathlib
import pickle
import struct
import sys
import tarfile
import urllib.error

import numpy as np
import pytest

import edgeopt as eo
import edgeopt.data as data
from edgeopt import _core

cifar_mod = sys.modules["edgeopt.data.cifar"]
download_mod = sys.modules["edgeopt.data.download"]
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


# ----------------------------------------------------------------------------- file writers

def idx_bytes(arr, magic=None):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = magic if magic is not None else bytes([0, 0, 0x08, arr.ndim])
    return head + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_fmnist(folder, n_train=12, n_test=5, seed=0, gz=True):
    r = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = r.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            name = os.path.join(folder, f"{split}-{kind}-ubyte" + (".gz" if gz else ""))
            with (gzip.open(name, "wb") if gz else open(name, "wb")) as f:
                f.write(idx_bytes(a))
        arrays[split] = (x, y)
    return arrays


def py2_pickle(obj):
    """A protocol-2 pickle as numpy 1.x writes it (numpy.core.multiarray), like the official files."""
    return pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def cifar_batch(r, n, label_keys):
    d = {b"batch_label": b"batch", b"data": r.integers(0, 256, size=(n, 3072), dtype=np.uint8),
         b"filenames": [b"img_%d.png" % i for i in range(n)]}
    for key, k in label_keys.items():
        d[key] = [int(v) for v in r.integers(0, k, size=n)]
    return d


def write_cifar10_py(root, n=6, seed=0):
    r = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = cifar_batch(r, n, {b"labels": 10})
        with open(os.path.join(folder, name), "wb") as f:
            f.write(py2_pickle(batches[name]))
    meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                             b"horse", b"ship", b"truck"], b"num_cases_per_batch": n, b"num_vis": 3072}
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        f.write(py2_pickle(meta))
    return folder, batches


def write_cifar100_py(root, n=7, seed=0):
    r = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-100-python")
    os.makedirs(folder, exist_ok=True)
    splits = {}
    for name in ("train", "test"):
        splits[name] = cifar_batch(r, n, {b"fine_labels": 100, b"coarse_labels": 20})
        with open(os.path.join(folder, name), "wb") as f:
            f.write(py2_pickle(splits[name]))
    meta = {b"fine_label_names": [b"fine%d" % i for i in range(100)],
            b"coarse_label_names": [b"coarse%d" % i for i in range(20)]}
    with open(os.path.join(folder, "meta"), "wb") as f:
        f.write(py2_pickle(meta))
    return folder, splits


def write_cifar10_bin(root, n=4, seed=0):
    r = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    recs = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec = r.integers(0, 256, size=(n, 3073), dtype=np.uint8)
        rec[:, 0] = r.integers(0, 10, size=n)
        rec.tofile(os.path.join(folder, name))
        recs[name] = rec
    with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
        f.write("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")
    return folder, recs


def targz_of(folder, arcname):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()


def leftovers(root):
    return [p for p in os.listdir(root) if p.startswith(".")]


# ----------------------------------------------------------------------------- Fashion-MNIST

def test_fashion_mnist_real_files():
    if not os.path.isdir(FASHION_MNIST):
        pytest.fail(f"{FASHION_MNIST} is missing: install the Debian package dataset-fashion-mnist "
                    "(see the README setup); this test reads the real data on purpose")
    train, test = data.fashion_mnist()
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == np.uint8 and train.y.dtype == np.int64 and test.y.dtype == np.int64
    assert train.y.min() == 0 and train.y.max() == 9
    assert np.bincount(train.y).tolist() == [6000] * 10 and np.bincount(test.y).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    mean, std = train.stats()  # the well-known Fashion-MNIST statistics
    assert mean[0] == pytest.approx(0.2860, abs=1e-4) and std[0] == pytest.approx(0.3530, abs=1e-4)


def test_fashion_mnist_root_env_and_plain_files(tmp_path, monkeypatch):
    arrays = write_fmnist(str(tmp_path / "a"))
    train, test = data.fashion_mnist(tmp_path / "a")
    np.testing.assert_array_equal(train.x[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(train.y, arrays["train"][1])
    np.testing.assert_array_equal(test.x[:, 0], arrays["t10k"][0])
    assert train.x.shape == (12, 1, 28, 28) and train.x.flags.writeable
    # $EDGEOPT_DATA/fashion-mnist, uncompressed files
    arrays = write_fmnist(str(tmp_path / "env" / "fashion-mnist"), seed=1, gz=False)
    monkeypatch.setenv("EDGEOPT_DATA", str(tmp_path / "env"))
    train, _ = data.fashion_mnist()
    np.testing.assert_array_equal(train.x[:, 0], arrays["train"][0])


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.fashion_mnist(tmp_path)
    monkeypatch.setenv("EDGEOPT_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="EDGEOPT_DATA"):
        data.fashion_mnist()
    write_fmnist(str(tmp_path))
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz is missing"):
        data.fashion_mnist(tmp_path)


def corrupt_idx(path, content):
    with gzip.open(path, "wb") as f:
        f.write(content)


@pytest.mark.parametrize("case, match", [
    ("gz_cut_short", "corrupted or truncated gzip"),
    ("not_gzip", "corrupted or truncated gzip"),
    ("wrong_magic", "magic"),
    ("wrong_ndim", "expected an IDX file with 3 dimensions"),
    ("short_data", "truncated IDX file"),
    ("extra_data", "more data than its header"),
    ("short_header", "truncated IDX file"),
])
def test_idx_corrupted_files(tmp_path, case, match):
    write_fmnist(str(tmp_path))
    path = str(tmp_path / "train-images-idx3-ubyte.gz")
    x = np.zeros((12, 28, 28), np.uint8)
    if case == "gz_cut_short":
        raw = pathlib.Path(path).read_bytes()
        pathlib.Path(path).write_bytes(raw[: len(raw) // 2])
    elif case == "not_gzip":
        pathlib.Path(path).write_bytes(b"this is not gzip data at all")
    elif case == "wrong_magic":
        corrupt_idx(path, idx_bytes(x, magic=b"\x00\x00\x09\x03"))
    elif case == "wrong_ndim":
        corrupt_idx(path, idx_bytes(x.reshape(12, 784)))
    elif case == "short_data":
        corrupt_idx(path, idx_bytes(x)[:-100])
    elif case == "extra_data":
        corrupt_idx(path, idx_bytes(x) + b"\x00")
    elif case == "short_header":
        corrupt_idx(path, b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(ValueError, match=match) as e:
        data.fashion_mnist(tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(e.value)


def test_idx_mismatched_counts_and_label_range(tmp_path):
    write_fmnist(str(tmp_path))
    corrupt_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(ValueError, match="mismatched counts: 12 images but 11 labels"):
        data.fashion_mnist(tmp_path)
    corrupt_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), idx_bytes(np.full(12, 10, np.uint8)))
    with pytest.raises(ValueError, match="label 10 .* out of range"):
        data.fashion_mnist(tmp_path)


def test_read_idx_round_trip(tmp_path):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    (tmp_path / "a.idx").write_bytes(idx_bytes(a))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.idx"), a)


# ----------------------------------------------------------------------------- CIFAR

def test_cifar10_python_batches(tmp_path):
    folder, batches = write_cifar10_py(str(tmp_path))
    for root in (tmp_path, folder):  # the extraction root, or the batches folder itself
        train, test = data.cifar10(root)
        assert train.x.shape == (30, 3, 32, 32) and test.x.shape == (6, 3, 32, 32)
        assert train.x.dtype == np.uint8 and train.y.dtype == np.int64
        want = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
        np.testing.assert_array_equal(train.x.reshape(30, 3072), want)
        # row layout: 1024 red, then green, then blue, each row-major 32x32
        assert train.x[0, 1, 2, 3] == want[0, 1024 + 2 * 32 + 3]
        np.testing.assert_array_equal(test.y, batches["test_batch"][b"labels"])
        assert train.classes[0] == "airplane" and len(train.classes) == 10


def test_cifar10_binary_batches(tmp_path):
    folder, recs = write_cifar10_bin(str(tmp_path))
    train, test = data.cifar10(tmp_path)
    want = np.concatenate([recs[f"data_batch_{i}.bin"] for i in range(1, 6)])
    np.testing.assert_array_equal(train.y, want[:, 0])
    np.testing.assert_array_equal(train.x.reshape(20, 3072), want[:, 1:])
    np.testing.assert_array_equal(test.x.reshape(4, 3072), recs["test_batch.bin"][:, 1:])
    assert train.classes[-1] == "truck" and train.x.flags.c_contiguous


def test_cifar100_fine_and_coarse(tmp_path):
    _, splits = write_cifar100_py(str(tmp_path))
    train, test = data.cifar100(tmp_path)
    assert train.x.shape == (7, 3, 32, 32) and len(train.classes) == 100
    np.testing.assert_array_equal(train.y, splits["train"][b"fine_labels"])
    np.testing.assert_array_equal(train.x.reshape(7, 3072), splits["train"][b"data"])
    train, test = data.cifar100(tmp_path, labels="coarse")
    np.testing.assert_array_equal(test.y, splits["test"][b"coarse_labels"])
    assert train.classes[0] == "coarse0" and len(train.classes) == 20
    with pytest.raises(ValueError, match="labels: expected 'fine' or 'coarse'"):
        data.cifar100(tmp_path, labels="medium")


def test_cifar_python3_pickles_with_str_keys(tmp_path):
    folder, batches = write_cifar10_py(str(tmp_path))
    d = {k.decode(): v for k, v in batches["test_batch"].items()}
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump(d, f)  # current protocol, numpy 2 module names
    _, test = data.cifar10(tmp_path)
    np.testing.assert_array_equal(test.y, d["labels"])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


@pytest.mark.parametrize("case, match", [
    ("truncated", "corrupted or truncated pickle"),
    ("garbage", "corrupted or truncated pickle"),
    ("not_a_dict", "expected a pickled dict"),
    ("missing_labels", "missing key 'labels'"),
    ("labels_out_of_range", r"'labels'\[2\] = 10 is out of range"),
    ("negative_label", r"'labels'\[0\] = -1 is out of range"),
    ("label_count", "must hold 6 integer labels"),
    ("float_labels", "must be a list of ints"),
    ("data_shape", r"'data' must be a uint8 array of shape \(N, 3072\)"),
    ("data_dtype", r"'data' must be a uint8 array"),
    ("foreign_global", "not allowed in a CIFAR batch"),
])
def test_cifar_bad_pickles(tmp_path, case, match):
    folder, batches = write_cifar10_py(str(tmp_path))
    path = os.path.join(folder, "data_batch_3")
    d = dict(batches["data_batch_3"])
    raw = None
    if case == "truncated":
        raw = py2_pickle(d)[:-500]
    elif case == "garbage":
        raw = b"\x80\x02garbage"
    elif case == "not_a_dict":
        raw = py2_pickle([1, 2, 3])
    elif case == "missing_labels":
        del d[b"labels"]
    elif case == "labels_out_of_range":
        d[b"labels"] = [0, 1, 10, 0, 0, 0]
    elif case == "negative_label":
        d[b"labels"] = [-1, 1, 2, 0, 0, 0]
    elif case == "label_count":
        d[b"labels"] = [0, 1]
    elif case == "float_labels":
        d[b"labels"] = [0.0] * 6
    elif case == "data_shape":
        d[b"data"] = d[b"data"].reshape(6, 3, 1024)
    elif case == "data_dtype":
        d[b"data"] = d[b"data"].astype(np.int32)
    elif case == "foreign_global":
        raw = pickle.dumps(_Evil(), protocol=2)
    with open(path, "wb") as f:
        f.write(raw if raw is not None else py2_pickle(d))
    with pytest.raises(ValueError, match=match) as e:
        data.cifar10(tmp_path)
    assert "data_batch_3" in str(e.value)


def test_cifar_missing_pieces(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        data.cifar100(tmp_path)
    folder, _ = write_cifar10_py(str(tmp_path))
    os.remove(os.path.join(folder, "data_batch_4"))
    with pytest.raises(FileNotFoundError, match="data_batch_4 is missing"):
        data.cifar10(tmp_path)


def test_cifar10_binary_truncated_and_bad_label(tmp_path):
    folder, recs = write_cifar10_bin(str(tmp_path))
    path = os.path.join(folder, "data_batch_2.bin")
    pathlib.Path(path).write_bytes(recs["data_batch_2.bin"].tobytes()[:-7])
    with pytest.raises(ValueError, match="data_batch_2.bin: truncated"):
        data.cifar10(tmp_path)
    rec = recs["data_batch_2.bin"].copy()
    rec[1, 0] = 10
    rec.tofile(path)
    with pytest.raises(ValueError, match="record 1 has label 10"):
        data.cifar10(tmp_path)


# ----------------------------------------------------------------------------- downloads

class FakeResponse(io.BytesIO):
    def __init__(self, payload):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def serve(monkeypatch, payload, calls):
    def opener(url, timeout=None):
        calls.append(url)
        return FakeResponse(payload)
    monkeypatch.setattr(download_mod, "_urlopen", opener)


def small_cifar10_archive(tmp_path):
    folder, batches = write_cifar10_py(str(tmp_path / "src"))
    return targz_of(folder, "cifar-10-batches-py"), batches


def test_cifar10_download_verifies_md5_and_extracts(tmp_path, monkeypatch):
    payload, batches = small_cifar10_archive(tmp_path)
    real = cifar_mod._ARCHIVES["cifar10"]
    monkeypatch.setitem(cifar_mod._ARCHIVES, "cifar10",
                        dataclasses.replace(real, md5=hashlib.md5(payload).hexdigest()))
    calls = []
    serve(monkeypatch, payload, calls)
    root = tmp_path / "data"
    train, test = data.cifar10(root, download=True)
    assert calls == [real.url]
    np.testing.assert_array_equal(test.y, batches["test_batch"][b"labels"])
    assert sorted(os.listdir(root)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    data.cifar10(root, download=True)  # already there: no second download
    assert len(calls) == 1


def test_cifar10_download_md5_mismatch_keeps_nothing(tmp_path, monkeypatch):
    payload, _ = small_cifar10_archive(tmp_path)  # not the official archive: md5 differs
    serve(monkeypatch, payload, [])
    root = tmp_path / "data"
    with pytest.raises(data.DownloadError, match="md5 mismatch") as e:
        data.cifar10(root, download=True)
    assert cifar_mod._ARCHIVES["cifar10"].md5 in str(e.value)
    assert os.listdir(root) == []


def test_download_without_network_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(download_mod, "_urlopen", offline)
    root = tmp_path / "data"
    with pytest.raises(data.DownloadError, match="could not download https://www.cs.toronto.edu") as e:
        data.cifar100(root, download=True)
    assert "name resolution" in str(e.value) and "eb9058c3a382ffc7106e4002c42a8d85" in str(e.value)
    assert os.listdir(root) == []


def test_download_interrupted_midway_keeps_nothing(tmp_path, monkeypatch):
    class Broken(FakeResponse):
        def read(self, n=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(100)
    monkeypatch.setattr(download_mod, "_urlopen", lambda url, timeout=None: Broken(b"x" * 1000))
    with pytest.raises(data.DownloadError, match="connection reset"):
        data.cifar10(tmp_path, download=True)
    assert os.listdir(tmp_path) == []


def test_archive_already_in_root_is_checked_and_extracted(tmp_path, monkeypatch):
    payload, batches = small_cifar10_archive(tmp_path)
    real = cifar_mod._ARCHIVES["cifar10"]
    root = tmp_path / "data"
    root.mkdir()
    (root / real.filename).write_bytes(payload)
    with pytest.raises(ValueError, match="md5 mismatch"):  # not the official bytes
        data.cifar10(root)
    assert sorted(os.listdir(root)) == [real.filename]
    monkeypatch.setitem(cifar_mod._ARCHIVES, "cifar10",
                        dataclasses.replace(real, md5=hashlib.md5(payload).hexdigest()))
    train, _ = data.cifar10(root)  # download=False: the archive is there already
    assert len(train) == 30 and leftovers(root) == []


def test_archive_with_unsafe_member_is_refused(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/../../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    payload = buf.getvalue()
    monkeypatch.setitem(cifar_mod._ARCHIVES, "cifar10", dataclasses.replace(
        cifar_mod._ARCHIVES["cifar10"], md5=hashlib.md5(payload).hexdigest()))
    serve(monkeypatch, payload, [])
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="refusing to extract"):
        data.cifar10(root, download=True)
    assert not (tmp_path / "escape.txt").exists() and leftovers(root) == []
    assert "cifar-10-batches-py" not in os.listdir(root)


def test_incomplete_dataset_folder_is_not_overwritten(tmp_path, monkeypatch):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "notes.txt").write_text("mine")
    calls = []
    serve(monkeypatch, b"", calls)
    with pytest.raises(FileExistsError, match="remove it and retry"):
        data.cifar10(tmp_path, download=True)
    assert calls == [] and (tmp_path / "cifar-10-batches-py" / "notes.txt").read_text() == "mine"


def test_truncated_archive_is_an_error_and_leaves_no_folder(tmp_path, monkeypatch):
    payload, _ = small_cifar10_archive(tmp_path)
    payload = payload[: len(payload) // 2]
    monkeypatch.setitem(cifar_mod._ARCHIVES, "cifar10", dataclasses.replace(
        cifar_mod._ARCHIVES["cifar10"], md5=hashlib.md5(payload).hexdigest()))
    serve(monkeypatch, payload, [])
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="corrupted or truncated archive"):
        data.cifar10(root, download=True)
    assert "cifar-10-batches-py" not in os.listdir(root) and leftovers(root) == []


# ----------------------------------------------------------------------------- synthetic

def test_synthetic_is_deterministic_balanced_and_learnable():
    train, test = data.synthetic(10, (1, 28, 28), 1000, 500, seed=3)
    again, _ = data.synthetic(10, (1, 28, 28), 1000, 500, seed=3)
    other, _ = data.synthetic(10, (1, 28, 28), 1000, 500, seed=4)
    np.testing.assert_array_equal(train.x, again.x)
    np.testing.assert_array_equal(train.y, again.y)
    assert not np.array_equal(train.x, other.x)
    assert train.x.shape == (1000, 1, 28, 28) and train.x.dtype == np.uint8 and test.y.dtype == np.int64
    assert np.bincount(train.y).tolist() == [100] * 10
    # nearest class centroid on raw pixels: far above chance (0.1), structure is class-dependent
    cent = np.stack([train.x[train.y == k].mean(0).ravel() for k in range(10)])
    d = ((test.x.reshape(len(test), -1)[:, None, :].astype(np.float64) - cent[None]) ** 2).sum(-1)
    assert (d.argmin(1) == test.y).mean() > 0.75
    rgb, _ = data.synthetic(3, (3, 8, 9), 5, 0, seed=0)
    assert rgb.x.shape == (5, 3, 8, 9) and rgb.num_classes == 3


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(num_classes=1), ValueError, "num_classes"),
    (dict(shape=(28, 28)), ValueError, "shape"),
    (dict(shape=(1, 0, 28)), ValueError, "shape"),
    (dict(n_train=-1), ValueError, "n_train"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
])
def test_synthetic_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        data.synthetic(**kwargs)


# ----------------------------------------------------------------------------- Dataset

def test_dataset_validation_and_subset():
    x = np.arange(5 * 2 * 3 * 3, dtype=np.uint8).reshape(5, 2, 3, 3)
    ds = data.Dataset(x, np.array([0, 1, 2, 1, 0], np.uint8), classes=["a", "b", "c"])
    assert len(ds) == 5 and ds.y.dtype == np.int64 and ds.num_classes == 3 and ds.shape == (2, 3, 3)
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == 1 and isinstance(yi, int)
    sub = ds.subset([4, 0])
    np.testing.assert_array_equal(sub.x, x[[4, 0]])
    assert sub.y.tolist() == [0, 0] and sub.classes == ["a", "b", "c"]
    assert ds.subset(np.array([True, False, True, False, False])).y.tolist() == [0, 2]
    assert len(ds.subset(slice(1, 3))) == 2 and len(ds.subset([])) == 0
    with pytest.raises(IndexError, match="index 5 is out of range"):
        ds.subset([0, 5])
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError, match="same number of samples"):
        data.Dataset(x, np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="integer class labels"):
        data.Dataset(x, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="labels >= 0"):
        data.Dataset(x, np.array([0, -1, 0, 0, 0]))
    with pytest.raises(ValueError, match="out of range for 3 classes"):
        data.Dataset(x, np.array([0, 3, 0, 0, 0]), classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="1-d"):
        data.Dataset(x, np.zeros((5, 1), np.int64))


def test_dataset_stats_match_numpy(rng):
    x = rng.integers(0, 256, size=(37, 3, 5, 4), dtype=np.uint8)
    mean, std = data.Dataset(x, np.zeros(37, np.int64)).stats()
    xf = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, xf.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, xf.std(axis=(0, 2, 3)), rtol=1e-12)
    xf32 = (rng.standard_normal((9, 2, 3, 3)) * 3 + 100).astype(np.float32)
    mean, std = data.Dataset(xf32, np.zeros(9, np.int64)).stats()
    np.testing.assert_allclose(mean, xf32.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, xf32.astype(np.float64).std(axis=(0, 2, 3)), rtol=1e-9)


# ----------------------------------------------------------------------------- DataLoader

def reference_batch(x, idx, mean, std, pad, flip, seed, epoch):
    """numpy: scale, zero-pad in pixel space, crop at the C++ offsets, flip, normalize."""
    oy, ox, fl = _core.testing.data_crop_flip(np.asarray(idx, np.int64), pad, flip, seed, epoch)
    xs = x[idx].astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0)
    n, c, h, w = xs.shape
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    padded[:, :, pad:pad + h, pad:pad + w] = xs
    out = np.stack([padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)]) if n else xs
    out = np.where(fl[:, None, None, None], out[..., ::-1], out)
    m = np.asarray(mean, np.float64).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float64).reshape(1, -1, 1, 1)
    return (out - m) / s


def collect(loader):
    xs, ys = zip(*list(loader))
    return np.concatenate(xs), np.concatenate(ys)


def test_loader_plain_batches_normalize(rng):
    x = rng.integers(0, 256, size=(10, 3, 4, 5), dtype=np.uint8)
    y = rng.integers(0, 4, size=10)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.3, 0.25]
    loader = data.DataLoader(data.Dataset(x, y), batch_size=4, mean=mean, std=std)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    for xb, yb in batches:
        assert xb.dtype == np.float32 and xb.flags.c_contiguous and yb.dtype == np.int64
    xb, yb = collect(loader)
    np.testing.assert_allclose(xb, reference_batch(x, np.arange(10), mean, std, 0, False, 0, 0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(yb, y)
    # defaults: [0, 1] scaling only
    xb, _ = collect(data.DataLoader(data.Dataset(x, y), batch_size=3))
    np.testing.assert_allclose(xb, x / 255.0, rtol=1e-6, atol=1e-7)


def test_loader_drop_last_and_empty():
    ds = data.Dataset(np.zeros((10, 1, 2, 2), np.uint8), np.zeros(10, np.int64))
    loader = data.DataLoader(ds, batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(y) for _, y in loader] == [4, 4]
    assert len(data.DataLoader(ds, batch_size=10, drop_last=True)) == 1
    assert len(data.DataLoader(ds, batch_size=11, drop_last=True)) == 0
    assert len(data.DataLoader(ds, batch_size=11)) == 1
    empty = data.DataLoader(ds.subset([]), batch_size=4, shuffle=True)
    assert len(empty) == 0 and list(empty) == []


def test_loader_shuffle_is_deterministic_per_seed_and_epoch(rng):
    x = rng.integers(0, 256, size=(50, 1, 3, 3), dtype=np.uint8)
    ds = data.Dataset(x, np.arange(50) % 7)
    a = data.DataLoader(ds, batch_size=8, shuffle=True, seed=5)
    b = data.DataLoader(ds, batch_size=8, shuffle=True, seed=5)
    ea0, ea1 = collect(a), collect(a)
    eb0, eb1 = collect(b), collect(b)
    np.testing.assert_array_equal(ea0[0], eb0[0])
    np.testing.assert_array_equal(ea1[0], eb1[0])
    order0, order1 = a.order(0), a.order(1)
    assert sorted(order0.tolist()) == list(range(50)) and not np.array_equal(order0, order1)
    np.testing.assert_array_equal(ea0[1], ds.y[order0])
    np.testing.assert_allclose(ea0[0], x[order0] / 255.0, rtol=1e-6)
    assert not np.array_equal(order0, data.DataLoader(ds, 8, shuffle=True, seed=6).order(0))
    b.set_epoch(1)
    np.testing.assert_array_equal(collect(b)[0], ea1[0])
    assert a.epoch == 2 and b.epoch == 2


def test_permutation_is_uniform_enough():
    counts = np.zeros((4, 4), np.int64)  # position x value over many (seed, epoch)
    for e in range(4000):
        p = _core.data.data_permutation(4, 1, e)
        counts[np.arange(4), p] += 1
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected each


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape, pad", [((2, 7, 9), 3), ((3, 4, 4), 5), ((1, 1, 1), 1), ((1, 28, 28), 4)])
def test_loader_crop_flip_matches_numpy_reference(rng, dtype, shape, pad):
    n = 23
    x = rng.integers(0, 256, size=(n,) + shape).astype(dtype)
    mean = rng.uniform(0, 0.5, size=shape[0])
    std = rng.uniform(0.2, 1.0, size=shape[0])
    ds = data.Dataset(x, np.zeros(n, np.int64))
    loader = data.DataLoader(ds, 5, shuffle=True, seed=11, mean=mean, std=std, crop=pad, flip=True)
    for epoch in range(2):
        order = loader.order(epoch)
        got, _ = collect(loader)
        want = reference_batch(x, order, mean, std, pad, True, 11, epoch)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 if dtype == np.float32 else 1e-5)


def test_augmentation_decisions_cover_the_range_and_differ_per_epoch():
    idx = np.arange(4000)
    oy, ox, fl = _core.testing.data_crop_flip(idx, 4, True, 0, 0)
    assert set(oy.tolist()) == set(range(9)) and set(ox.tolist()) == set(range(9))
    assert 0.45 < fl.mean() < 0.55
    oy1, _, fl1 = _core.testing.data_crop_flip(idx, 4, True, 0, 1)
    assert (oy1 != oy).mean() > 0.8
    oy, ox, fl = _core.testing.data_crop_flip(idx, 0, False, 0, 0)  # no augmentation: identity crop
    assert not oy.any() and not ox.any() and not fl.any()


def test_augmentation_independent_of_batch_size_and_threads(rng):
    x = rng.integers(0, 256, size=(40, 3, 8, 8), dtype=np.uint8)
    ds = data.Dataset(x, np.zeros(40, np.int64))
    threads = eo.get_num_threads()
    try:
        eo.set_num_threads(1)
        a = collect(data.DataLoader(ds, 7, shuffle=True, seed=2, augment="crop_flip"))[0]
        eo.set_num_threads(max(2, threads))
        b = collect(data.DataLoader(ds, 32, shuffle=True, seed=2, augment="crop_flip"))[0]
    finally:
        eo.set_num_threads(threads)
    np.testing.assert_array_equal(a, b)
    plain = collect(data.DataLoader(ds, 40, shuffle=True, seed=2))[0]
    assert not np.array_equal(a, plain)


def test_augment_option_settings():
    ds = data.Dataset(np.zeros((3, 1, 4, 4), np.uint8), np.zeros(3, np.int64))
    loader = data.DataLoader(ds, 2, augment="crop_flip")
    assert (loader.crop, loader.flip) == (4, True)
    loader = data.DataLoader(ds, 2, augment="crop_flip", crop=2, flip=False)
    assert (loader.crop, loader.flip) == (2, False)
    # constant images: padding normalizes to -mean/std, the image itself to (0 - mean)/std too
    xb, _ = next(iter(data.DataLoader(ds, 3, mean=0.5, std=0.25, crop=2)))
    np.testing.assert_allclose(xb, -2.0)


def test_loader_flat_and_float64_samples(rng):
    x = rng.standard_normal((9, 6))
    loader = data.DataLoader(data.Dataset(x, np.zeros(9, np.int64)), 4, mean=1.0, std=2.0)
    xb, _ = collect(loader)
    assert xb.shape == (9, 6) and xb.dtype == np.float32
    np.testing.assert_allclose(xb, (x - 1.0) / 2.0, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"need \(N, C, H, W\) images"):
        data.DataLoader(data.Dataset(x, np.zeros(9, np.int64)), 4, augment="crop_flip")
    x3 = rng.integers(0, 256, size=(4, 5, 5), dtype=np.uint8)  # (N, H, W): one channel
    xb, _ = collect(data.DataLoader(data.Dataset(x3, np.zeros(4, np.int64)), 4))
    assert xb.shape == (4, 5, 5)


def test_loader_runs_a_full_fashion_mnist_epoch():
    if not os.path.isdir(FASHION_MNIST):
        pytest.fail(f"{FASHION_MNIST} is missing: install dataset-fashion-mnist")
    train, _ = data.fashion_mnist()
    mean, std = train.stats()
    loader = data.DataLoader(train, 256, shuffle=True, mean=mean, std=std, augment="crop_flip")
    n = 0
    for xb, yb in loader:
        n += len(yb)
    assert n == 60000 and xb.shape[1:] == (1, 28, 28)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(augment="rotate"), ValueError, "augment"),
    (dict(mean=[0.1, 0.2]), ValueError, "mean"),
    (dict(std=0.0), ValueError, "std"),
    (dict(std=float("nan")), ValueError, "std"),
    (dict(crop=-1), ValueError, "crop"),
    (dict(flip="yes"), TypeError, "flip"),
])
def test_loader_bad_arguments(kwargs, exc, match):
    ds = data.Dataset(np.zeros((3, 1, 4, 4), np.uint8), np.zeros(3, np.int64))
    args = dict(batch_size=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        data.DataLoader(ds, **args)
    with pytest.raises(TypeError, match="edgeopt.data.Dataset"):
        data.DataLoader((np.zeros(3), np.zeros(3)), 2)


def test_core_batch_binding_rejects_bad_input():
    x = np.zeros((4, 1, 3, 3), np.uint8)
    m, s = np.zeros(1, np.float32), np.ones(1, np.float32)
    idx = np.array([0, 3])
    with pytest.raises(TypeError, match="x: expected dtype uint8 or float32"):
        _core.data.data_assemble_batch(x.astype(np.float64), idx, m, s)
    with pytest.raises(ValueError, match="x: expected a 4-d array"):
        _core.data.data_assemble_batch(x[0], idx, m, s)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.data.data_assemble_batch(x[:, :, :, ::-1], idx, m, s)
    with pytest.raises(ValueError, match="index 4 at position 1 is out of range"):
        _core.data.data_assemble_batch(x, np.array([0, 4]), m, s)
    with pytest.raises(ValueError, match="index -1"):
        _core.data.data_assemble_batch(x, np.array([-1]), m, s)
    with pytest.raises(TypeError, match="indices: expected an integer array"):
        _core.data.data_assemble_batch(x, np.array([0.0]), m, s)
    with pytest.raises(ValueError, match=r"mean: expected shape \(1,\)"):
        _core.data.data_assemble_batch(x, idx, np.zeros(2, np.float32), s)
    with pytest.raises(ValueError, match="std: expected finite positive"):
        _core.data.data_assemble_batch(x, idx, m, np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="pad"):
        _core.data.data_assemble_batch(x, idx, m, s, pad=-1)
    with pytest.raises(ValueError, match="n: expected a non-negative"):
        _core.data.data_permutation(-1, 0, 0)
    with pytest.raises(ValueError, match="x: expected an"):
        _core.data.data_channel_stats(np.zeros(3, np.uint8))

"""DataLoader prefetch: the next batch is assembled in one worker thread while the caller holds the
current one. Prefetch changes only when a batch is made: the batches are byte-identical with it
on and off; an error in the worker reaches the caller at the batch that failed; an abandoned
iterator leaves no thread behind and does not hold up interpreter exit."""
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import edgeopt.data as data

WORKER = "edgeopt-loader"  # loader.py's thread name prefix


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith(WORKER)]


@pytest.fixture
def ds(rng):
    x = rng.integers(0, 256, size=(37, 3, 8, 8), dtype=np.uint8)
    return data.Dataset(x, rng.integers(0, 10, size=37))


def record_calls(loader):
    """Wraps loader.batch to log (thread name, indices) of every batch it makes."""
    calls, inner = [], loader.batch

    def batch(indices, epoch=None):
        calls.append((threading.current_thread().name, np.array(indices)))
        return inner(indices, epoch)
    loader.batch = batch
    return calls


@pytest.mark.parametrize("batch_size, drop_last", [(5, False), (5, True), (37, False), (64, False)])
def test_batches_identical_with_and_without_prefetch(ds, batch_size, drop_last):
    kw = dict(shuffle=True, seed=3, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3], augment="crop_flip",
              drop_last=drop_last)
    on = data.DataLoader(ds, batch_size, prefetch=True, **kw)
    off = data.DataLoader(ds, batch_size, prefetch=False, **kw)
    assert len(on) == len(off)
    for epoch in range(3):
        a, b = list(on), list(off)
        assert len(a) == len(b) == len(on)
        order = on.order(epoch)
        for i, ((xa, ya), (xb, yb)) in enumerate(zip(a, b)):
            assert xa.dtype == np.float32 and xa.flags.c_contiguous
            assert xa.tobytes() == xb.tobytes()
            np.testing.assert_array_equal(ya, yb)
            want_x, want_y = on.batch(order[i * batch_size:(i + 1) * batch_size], epoch)
            assert xa.tobytes() == want_x.tobytes()
            np.testing.assert_array_equal(ya, want_y)
    assert on.epoch == off.epoch == 3
    assert not loader_threads()


def test_next_batch_is_made_in_the_worker_while_the_caller_holds_the_current(ds):
    loader = data.DataLoader(ds, 10, shuffle=True, augment="crop_flip")
    calls = record_calls(loader)
    it = iter(loader)
    next(it)
    assert calls[0][0] == threading.current_thread().name  # batch 0: nothing to overlap it with
    assert len(calls) <= 2  # batch 1 submitted, perhaps not started yet
    rest = list(it)
    assert len(rest) == 3 and len(calls) == 4
    assert all(name.startswith(WORKER) for name, _ in calls[1:])
    order = loader.order(0)
    for i, (_, idx) in enumerate(calls):
        np.testing.assert_array_equal(idx, order[i * 10:(i + 1) * 10])
    assert not loader_threads()

    lazy = data.DataLoader(ds, 10, prefetch=False)
    calls = record_calls(lazy)
    it = iter(lazy)
    next(it), next(it)
    assert [name for name, _ in calls] == [threading.current_thread().name] * 2
    it.close()


@pytest.mark.parametrize("how", ["break", "close", "del"])
def test_abandoned_iterator_leaves_no_thread(ds, how):
    loader = data.DataLoader(ds, 4, shuffle=True, augment="crop_flip")
    if how == "break":
        for i, _ in enumerate(loader):
            if i == 2:
                break
    else:
        it = iter(loader)
        next(it), next(it)
        assert len(loader_threads()) == 1
        if how == "close":
            it.close()
        else:
            del it  # CPython closes the generator at once
    assert not loader_threads()
    # the loader itself is fine afterwards: the next epoch runs whole
    assert sum(len(y) for _, y in loader) == len(ds)


def test_interpreter_exits_with_an_unfinished_iterator(tmp_path):
    script = tmp_path / "abandon.py"
    script.write_text(
        "import numpy as np, edgeopt.data as data\n"
        "ds = data.Dataset(np.zeros((200, 3, 32, 32), np.uint8), np.zeros(200, np.int64))\n"
        "it = iter(data.DataLoader(ds, 8, shuffle=True, augment='crop_flip'))\n"
        "next(it)\n"  # the worker is making batch 1; `it` stays referenced until exit
        "print('ok')\n")
    env = dict(os.environ)
    python_dir = str(pathlib.Path(data.__file__).resolve().parents[2])  # the edgeopt under test
    env["PYTHONPATH"] = os.pathsep.join(p for p in (python_dir, env.get("PYTHONPATH")) if p)
    r = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok" and r.stderr == ""


@pytest.mark.parametrize("prefetch", [True, False])
def test_worker_error_reaches_the_caller_at_the_failing_batch(ds, prefetch):
    loader = data.DataLoader(ds, 5, shuffle=True, prefetch=prefetch)
    inner = loader.batch
    made = []

    def batch(indices, epoch=None):
        if len(made) == 2:
            raise ValueError("corrupt sample in batch 2")
        made.append(len(made))
        return inner(indices, epoch)
    loader.batch = batch
    got = []
    with pytest.raises(ValueError, match="corrupt sample in batch 2"):
        for xb, _ in loader:
            got.append(xb)
    assert len(got) == 2  # batches 0 and 1 were delivered before the error, with or without prefetch
    assert not loader_threads()


def test_len_order_batch_and_repr_with_prefetch(ds):
    loader = data.DataLoader(ds, 8, shuffle=True, seed=1, augment="crop_flip")
    assert loader.prefetch is True and "prefetch=True" in repr(loader)
    assert "prefetch=False" in repr(data.DataLoader(ds, 8, prefetch=False))
    assert len(loader) == 5 and len(data.DataLoader(ds, 8, drop_last=True)) == 4
    order = loader.order(0)
    assert sorted(order.tolist()) == list(range(len(ds)))
    xb, yb = loader.batch(order[:8], epoch=0)
    first_x, first_y = next(iter(loader))
    assert xb.tobytes() == first_x.tobytes()
    np.testing.assert_array_equal(yb, first_y)
    assert data.DataLoader(ds, 8, prefetch=np.bool_(False)).prefetch is False
    with pytest.raises(TypeError, match="prefetch"):
        data.DataLoader(ds, 8, prefetch="yes")
    assert not loader_threads()

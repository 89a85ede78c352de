"""The output-array cache of the training kernels (cpp/bindings/array_pool.h): a repeated
training step reuses its buffers, a reused buffer never aliases a live array, views keep their
buffer alive, and the limit and clearing work."""
import gc
import threading

import numpy as np
import pytest

import edgeopt as eo
from edgeopt.nn import functional as F


@pytest.fixture(autouse=True)
def _fresh_cache():
    eo.empty_cache()
    yield
    eo.set_buffer_cache_limit(2 << 30)
    eo.empty_cache()


def test_second_training_step_reuses_every_buffer(rng):
    m = eo.models.create("mobilenet_v2", width_mult=0.5)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    misses = []
    for _ in range(3):
        y = m(x)
        m.backward(np.ones_like(y))
        del y
        gc.collect()
        misses.append(eo.buffer_cache_info()["misses"])
    assert misses[0] > 0 and misses[1] == misses[0] == misses[2]
    assert eo.buffer_cache_info()["hits"] > 0


def test_reused_buffers_do_not_alias_live_arrays(rng):
    x1 = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)  # 2 MB: pooled
    a = F.relu(x1)
    b = F.relu(-x1)
    np.testing.assert_array_equal(a, np.maximum(x1, 0))
    del a
    gc.collect()
    c = F.relu(2 * x1)  # takes a's buffer
    np.testing.assert_array_equal(b, np.maximum(-x1, 0))
    np.testing.assert_array_equal(c, np.maximum(2 * x1, 0))


def test_a_view_keeps_its_buffer(rng):
    x = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
    view = F.relu(x)[3:5]
    gc.collect()
    F.relu(-x)  # would reuse the buffer if the view had not kept it
    np.testing.assert_array_equal(view, np.maximum(x[3:5], 0))


def test_limit_and_clear(rng):
    x = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
    F.relu(x)
    gc.collect()
    assert eo.buffer_cache_info()["idle_bytes"] >= x.nbytes
    eo.empty_cache()
    assert eo.buffer_cache_info()["idle_bytes"] == 0
    eo.set_buffer_cache_limit(0)
    F.relu(x)
    gc.collect()
    assert eo.buffer_cache_info()["idle_bytes"] == 0
    with pytest.raises(ValueError, match="nbytes"):
        eo.set_buffer_cache_limit(-1)


def test_concurrent_threads(rng):
    x = rng.standard_normal((32, 16, 16, 16)).astype(np.float32)
    errors = []

    def work(k):
        try:
            for i in range(50):
                y = F.relu(x * (k + i))
                if not np.array_equal(y, np.maximum(x * (k + i), 0)):
                    errors.append((k, i))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_tracemalloc_sees_pooled_arrays(rng):
    import tracemalloc
    x = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
    F.relu(x)  # warm the pool: the next array reuses a buffer
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y = F.relu(x)
        during = tracemalloc.get_traced_memory()[0]
        del y
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert during - before >= x.nbytes
    assert after - before < x.nbytes // 10


def test_engine_outputs_are_aligned_and_not_pooled(rng):
    """The Engine writes its output in place into 64-byte aligned arrays of their own, at any
    size, which never enter this cache: a server's varying batch sizes leave nothing idle."""
    import tracemalloc
    from edgeopt.deploy.format import ACTIVATION, ModelBuilder, OpType, TensorInfo
    b = ModelBuilder(TensorInfo(4, 9, 9))
    y = b.add_op(OpType.ACTIVATION, "relu", [b.input], TensorInfo(4, 9, 9), {"kind": ACTIVATION["relu"]})
    e = eo.deploy.Engine(b.to_bytes(y, {"scheme": "test"}))
    before = eo.buffer_cache_info()
    for n in (1, 7, 64, 300):  # 1.3 KB to 389 KB of output
        x = rng.standard_normal((n, 4, 9, 9)).astype(np.float32)
        outs = [e.run(x) for _ in range(5)]
        assert all(o.ctypes.data % 64 == 0 for o in outs)
        np.testing.assert_array_equal(outs[-1], np.maximum(x, 0))
        del outs
        gc.collect()
    after = eo.buffer_cache_info()
    assert after == before
    tracemalloc.start()
    try:
        out = e.run(rng.standard_normal((300, 4, 9, 9)).astype(np.float32))
        assert tracemalloc.get_traced_memory()[0] >= out.nbytes  # seen like numpy's own arrays
        del out
        gc.collect()
        assert tracemalloc.get_traced_memory()[0] < 389 * 1024
    finally:
        tracemalloc.stop()

"""Files edgeopt writes and reads back (python/edgeopt/_io.py, train/checkpoint.py): permissions
under a umask, an existing file's mode and owner kept, no temp file left by an error or by a
kill -9 mid-save (the next save removes a dead writer's temp, never a live one's), and checkpoints
whose metadata is bad, deep or strange raise a ValueError naming the file."""
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import _io, deploy
from edgeopt.deploy.onnx_export import export_onnx



def tiny_model():
    eo.manual_seed(0)
    m = eo.nn.Sequential(eo.nn.Conv2d(3, 4, 3, padding=1), eo.nn.ReLU(), eo.nn.GlobalAvgPool2d(),
                         eo.nn.Flatten(), eo.nn.Linear(4, 3))
    m.eval()
    return m


@pytest.fixture(scope="module")
def writers():
    """Each file edgeopt writes, as path -> None."""
    m = tiny_model()
    e = deploy.compile(m, "fp32", input_shape=(1, 3, 8, 8))
    return {
        "engine": e.save,
        "checkpoint": lambda p: eo.train.save_checkpoint(str(p), m, eo.optim.SGD(m.named_parameters(), lr=0.1),
                                                         meta={"epoch": 0}),
        "onnx": lambda p: export_onnx(m, p, input_shape=(1, 3, 8, 8)),
        "bytes": lambda p: _io.atomic_write_bytes(p, b"payload"),
    }


class umask:
    def __init__(self, mask):
        self.mask = mask

    def __enter__(self):
        self.old = os.umask(self.mask)

    def __exit__(self, *exc):
        os.umask(self.old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def temps(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".tmp"))


# ---------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o027, 0o640)])
@pytest.mark.parametrize("kind", ["engine", "checkpoint", "onnx", "bytes"])
def test_new_file_mode_follows_umask(tmp_path, writers, kind, mask, expected):
    path = tmp_path / "out.bin"
    with umask(mask):
        writers[kind](path)
    assert mode(path) == expected
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("old_mode,mask", [(0o644, 0o077), (0o640, 0o022), (0o600, 0o022), (0o755, 0o077),
                                           (0o444, 0o022)])
@pytest.mark.parametrize("kind", ["engine", "checkpoint", "onnx"])
def test_overwrite_keeps_the_existing_mode(tmp_path, writers, kind, old_mode, mask):
    """The umask is chosen so that a new file would get another mode than the old one."""
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, old_mode)
    with umask(mask):
        writers[kind](path)
    assert path.read_bytes() != b"old"
    assert mode(path) == old_mode
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to hand a file to another user")
def test_overwrite_keeps_owner_and_group(tmp_path, writers):
    path = tmp_path / "m.edgeopt"
    path.write_bytes(b"old")
    os.chown(path, 4321, 5432)
    os.chmod(path, 0o640)
    writers["engine"](path)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 5432, 0o640)
    deploy.load(path)


# ---------------------------------------------------------------------------- error paths
class Stop(Exception):
    pass


@pytest.mark.parametrize("exc", [Stop, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [True, False])
def test_error_in_the_write_callback_leaves_no_temp(tmp_path, exc, existing):
    path = tmp_path / "t.bin"
    if existing:
        path.write_bytes(b"previous")

    def write(f):
        f.write(b"x" * (1 << 20))
        assert len(temps(tmp_path)) == 1  # the temp exists while writing...
        raise exc("boom")
    with pytest.raises(exc, match="boom"):
        _io.atomic_write(path, write)
    assert temps(tmp_path) == []  # ... and is gone after the error
    assert os.listdir(tmp_path) == (["t.bin"] if existing else [])
    if existing:
        assert path.read_bytes() == b"previous"


def test_failed_rename_and_failed_fsync_leave_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "a_folder"
    target.mkdir()
    (target / "inside").write_bytes(b"")
    with pytest.raises(OSError):
        _io.atomic_write_bytes(target, b"data")  # rename over a non-empty folder fails
    assert os.listdir(tmp_path) == ["a_folder"]

    def boom(fd):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="simulated"):
        _io.atomic_write_bytes(tmp_path / "f.bin", b"data")
    assert os.listdir(tmp_path) == ["a_folder"]


def test_a_checkpoint_that_cannot_be_written_leaves_no_temp(tmp_path):
    path = tmp_path / "c.npz"
    m = tiny_model()
    eo.train.save_checkpoint(str(path), m, meta={"epoch": 0})
    good = path.read_bytes()
    for bad_meta, err in [({"x": object()}, TypeError), ({"deep": json.loads("[" * 65 + "]" * 65)}, ValueError),
                          ([1, 2], TypeError)]:
        with pytest.raises(err):
            eo.train.save_checkpoint(str(path), m, meta=bad_meta)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["c.npz"]


# ---------------------------------------------------------------------------- temps of dead writers
def _stat_fields(pid):
    """/proc/<pid>/stat fields from the state on (index 0 = state, 19 = start time)."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    return st[st.rfind(")") + 2:].split()


def _dead_process():
    """(pid, start time) of a process that has exited and been reaped."""
    out = subprocess.run([sys.executable, "-c", "import os; print(open('/proc/self/stat').read())"],
                         capture_output=True, text=True, check=True).stdout
    fields = out[out.rfind(")") + 2:].split()
    return int(out.split()[0]), int(fields[19])


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_next_save_removes_dead_writers_temps_only(tmp_path):
    target = tmp_path / "m.edgeopt"
    host = _io._host_tag()
    me = _io._own_tag()
    pid, start = _dead_process()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_start = int(_stat_fields(live.pid)[19])
        my_pid, my_start = me.split("-")[1:]
        files = {
            "dead": f".m.edgeopt.{host}-{pid}-{start}.0123abcd.tmp",
            "pid reused": f".m.edgeopt.{host}-{my_pid}-{int(my_start) + 1}.0123abcd.tmp",
            "live": f".m.edgeopt.{host}-{live.pid}-{live_start}.0123abcd.tmp",
            "this process": f".m.edgeopt.{me}.0123abcd.tmp",  # another thread may be writing it
            "other host": f".m.edgeopt.{'0' * 8 if host != '0' * 8 else '1' * 8}-{pid}-{start}.0123abcd.tmp",
            "other target": f".n.edgeopt.{host}-{pid}-{start}.0123abcd.tmp",
            "not ours": ".m.edgeopt.whatever.tmp",
        }
        for name in files.values():
            (tmp_path / name).write_bytes(b"partial")
        _io.atomic_write_bytes(target, b"new")
        left = set(os.listdir(tmp_path))
        assert files["dead"] not in left and files["pid reused"] not in left
        for kept in ("live", "this process", "other host", "other target", "not ours"):
            assert files[kept] in left, kept
        assert target.read_bytes() == b"new"
    finally:
        live.kill()
        live.wait()
    # a writer that has died but not been reaped yet (a zombie) is dead too
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while _stat_fields(zombie.pid)[0] != "Z":
        time.sleep(0.01)
    name = f".m.edgeopt.{host}-{zombie.pid}-{_stat_fields(zombie.pid)[19]}.0123abcd.tmp"
    (tmp_path / name).write_bytes(b"partial")
    _io.atomic_write_bytes(target, b"newer")
    assert name not in os.listdir(tmp_path)
    zombie.wait()


def test_long_names_get_short_temp_names(tmp_path):
    long = tmp_path / ("é" * 120 + ".edgeopt")  # 248 bytes: a temp name with the full name would not fit
    with pytest.raises(Stop):
        _io.atomic_write(long, lambda f: (_ for _ in ()).throw(Stop()))
    _io.atomic_write_bytes(long, b"data")
    assert long.read_bytes() == b"data" and os.listdir(tmp_path) == [long.name]


# The helper imports edgeopt once, then for each "go" forks a child that saves A, B, A, ... to the
# target until it is killed; it reaps the child and answers "reaped". Forking (instead of a fresh
# interpreter per kill) keeps 40 kills within a few seconds.
_SAVER = r"""
import os, sys
os.umask(0o022)
from edgeopt import deploy
a, b, target = sys.argv[1:4]
engines = [deploy.load(a), deploy.load(b)]
engines[0].save(a + ".again")  # the helper has saved before it forks: each child must not reuse its tag
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            i = 0
            while True:
                engines[i % 2].save(target)
                i += 1
        finally:
            os._exit(1)
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_during_saves_never_tears_the_file_and_leaves_no_temp(tmp_path):
    """40 kill -9 at random points of back-to-back 4 MB Engine.save calls: the target is always
    one complete file (A or B, loads and runs), and one more save removes every temp."""
    eo.manual_seed(0)
    engines = []
    for seed in (1, 2):
        eo.manual_seed(seed)
        m = eo.nn.Sequential(eo.nn.Flatten(), eo.nn.Linear(1024, 1024))
        m.eval()
        engines.append(deploy.compile(m, "fp32", input_shape=(1, 1, 32, 32)))
    payloads = [e.to_bytes() for e in engines]
    assert payloads[0] != payloads[1] and len(payloads[0]) > 4_000_000
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for name, e in zip("ab", engines):
        e.save(src / name)
    target = out / "m.edgeopt"
    with umask(0o022):
        engines[0].save(target)
    # the child imports the edgeopt this process runs (the dev tree's, or the installed package)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(eo.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_parent, os.environ.get("PYTHONPATH", "")]))
    helper = subprocess.Popen([sys.executable, "-c", _SAVER, str(src / "a"), str(src / "b"), str(target)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    rng = np.random.default_rng(7)
    kills, torn_temps = 40, 0
    x = np.ones((1, 1, 32, 32), np.float32)
    try:
        for k in range(kills):
            helper.stdin.write("go\n")
            helper.stdin.flush()
            pid = int(helper.stdout.readline())
            time.sleep(rng.uniform(0.002, 0.06))
            os.kill(pid, signal.SIGKILL)
            assert helper.stdout.readline().strip() == "reaped"
            data = target.read_bytes()
            assert data in payloads, f"kill {k}: the target is neither old nor new ({len(data)} bytes)"
            assert deploy.load(target).run(x).shape == (1, 1024)
            torn_temps += len(temps(out))
            with umask(0o022):
                engines[k % 2].save(target)  # the next save of the same path cleans up
            assert os.listdir(out) == ["m.edgeopt"], f"kill {k}: {os.listdir(out)}"
            assert target.read_bytes() == payloads[k % 2] and mode(target) == 0o644
    finally:
        helper.stdin.close()
        helper.wait(timeout=30)
        helper.stdout.close()
    # most kills landed while a temp existed, so the cleanup above was exercised
    assert torn_temps >= kills // 4, torn_temps


# ---------------------------------------------------------------------------- checkpoints read back
def _checkpoint_with(tmp_path, meta_bytes=None, extra=None, name="c.npz"):
    """A real checkpoint whose 'meta' array (and optionally other arrays) is replaced."""
    path = tmp_path / name
    m = tiny_model()
    eo.train.save_checkpoint(str(path), m, eo.optim.SGD(m.named_parameters(), lr=0.1, momentum=0.9),
                             meta={"epoch": 1})
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if meta_bytes is not None:
        arrays["meta"] = np.frombuffer(meta_bytes, np.uint8)
    arrays.update(extra or {})
    np.savez(path, **arrays)
    return str(path)


def _checkpoint_error(path, with_optimizer=False) -> str:
    m = tiny_model()
    opt = eo.optim.SGD(m.named_parameters(), lr=0.1, momentum=0.9) if with_optimizer else None
    before = {k: v.copy() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError) as info:
        eo.train.load_checkpoint(path, m, opt)
    assert type(info.value) is ValueError and repr(path) in str(info.value), repr(info.value)
    for k, v in m.state_dict().items():  # a rejected file changes nothing
        np.testing.assert_array_equal(v, before[k])
    return str(info.value)


def test_checkpoint_with_bad_or_deep_metadata_names_the_file(tmp_path):
    for meta, msg in [(b"{not json", "not valid JSON"), (b'{"a": "\xff"}', "not valid JSON"),
                      (b"[" * 100_000 + b"]" * 100_000, "nests 100000 levels deep"),
                      (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests 100000 levels deep"),
                      (b"[1, 2]", "JSON object")]:
        assert msg in _checkpoint_error(_checkpoint_with(tmp_path, meta))
    path = _checkpoint_with(tmp_path, extra={"meta": np.zeros(3, np.float32)})
    assert "1-D uint8" in _checkpoint_error(path)


@pytest.mark.parametrize("meta,field", [
    ({"epoch": 1e400}, "epoch"), ({"epoch": -1}, "epoch"), ({"epoch": "3"}, "epoch"), ({"epoch": True}, "epoch"),
    ({"epoch": 2 ** 40}, "epoch"),
    ({"history": {"train_loss": [0.5, "x"]}}, "history.train_loss"), ({"history": {"nope": []}}, "history"),
    ({"history": {"lr": [10 ** 400]}}, "history.lr"), ({"history": [1]}, "history"),
    ({"input_norm": {"mean": [0.5], "std": [0.0]}}, "input_norm"),
    ({"input_norm": {"mean": [float("nan")], "std": [1.0]}}, "input_norm"),
    ({"input_norm": {"mean": [0.5, 0.5], "std": [1.0]}}, "input_norm"), ({"input_norm": [1]}, "input_norm"),
])
def test_checkpoint_fields_fit_reads_back_are_checked(tmp_path, meta, field):
    msg = _checkpoint_error(_checkpoint_with(tmp_path, json.dumps(meta).encode()))
    assert f"metadata {field!r}" in msg


def test_checkpoint_with_malformed_optimizer_state_changes_nothing(tmp_path):
    for extra, msg in [({"optim/param_groups/__len__": np.array(10 ** 6)}, "list length"),
                       ({"optim/param_groups/__len__": np.array(1.5)}, "list length"),
                       ({"optim/param_groups/__len__": np.array(-1)}, "list length"),
                       ({"optim/param_groups/__len__": np.array(2), "optim/param_groups/x": np.array(0)},
                        "missing items"),
                       ({"optim/param_groups/__len__": np.array([1, 2])}, "list length"),
                       ({"optim/param_groups": np.array(1)}, "both a value and a folder")]:
        assert msg in _checkpoint_error(_checkpoint_with(tmp_path, extra=extra), with_optimizer=True)


def test_checkpoint_good_values_still_load(tmp_path):
    m = tiny_model()
    path = str(tmp_path / "c.npz")
    meta = {"epoch": 3, "history": {"train_loss": [1.0, float("nan"), float("inf")], "epoch": [1, 2, 3]},
            "input_norm": {"mean": [0.5] * 3, "std": [0.25] * 3}, "user": json.loads("[" * 60 + "]" * 60)}
    eo.train.save_checkpoint(path, m, eo.optim.SGD(m.named_parameters(), lr=0.1, momentum=0.9), meta=meta)
    back = eo.train.load_checkpoint(path, tiny_model(), eo.optim.SGD(m.named_parameters(), lr=0.1, momentum=0.9))
    assert back["epoch"] == 3 and back["input_norm"] == meta["input_norm"] and back["user"] == meta["user"]
    assert back["history"]["train_loss"][0] == 1.0 and np.isnan(back["history"]["train_loss"][1])
    with zipfile.ZipFile(path) as z:
        assert "meta.npy" in z.namelist()

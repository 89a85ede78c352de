"""Running sweeps: what a cell records, resuming, failures, kill -9, the Dask executor, the database."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import edgeopt as eo
from edgeopt.sweep import ResultsDB, run, runner, techniques
from edgeopt.sweep.db import METRICS, SCHEMA_VERSION, DatabaseLocked

from sweep_helpers import EXACT, TINY, fp16_step, make_stage_concurrently

# the folder the imported edgeopt lives in (the source tree's python/ in development, site-packages
# after pip install): subprocesses and Dask workers must import the same build
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(eo.__file__)))


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("sweep") / "r.db")
    summary = run(TINY, db=db, progress=False)
    return db, summary


def test_every_cell_is_measured_on_the_deployed_engine(tiny_db):
    db, summary = tiny_db
    assert summary["ran"] == 7 and summary["failed"] == 0
    rows = {r["technique"]: r for r in ResultsDB(db).cells()}
    for t, r in rows.items():
        assert r["status"] == "ok", r["error"]
        assert all(r[k] is not None for k in METRICS), t
        # size is the saved file's bytes; the engine is kept for the user
        path = os.path.join(summary["engines"], f"{r['key']}.edgeopt")
        assert os.path.getsize(path) == r["size_bytes"]
        e = eo.deploy.load(path)
        assert e.peak_activation_bytes == r["peak_activation_bytes"]
        # accuracy is the engine's on the test set the cell used
        tr, te = eo.data.synthetic(shape=(1, 16, 16), n_train=512, n_test=128)
        assert r["test_images"] == len(te)
        assert abs(100 * eo.train.evaluate(e, te)["acc"] - r["acc"]) < 1e-9
        assert r["env"]["isa"] and r["env"]["cpu"] and r["env"]["threads"] == 2
    assert rows["NQ"]["size_bytes"] > rows["F16"]["size_bytes"] > rows["BLQ"]["size_bytes"]
    assert rows["PRN"]["nonzero_params"] < 0.4 * rows["PRN"]["params"]      # 80 % of the weights pruned
    assert rows["PRQ"]["nonzero_params"] == rows["PRN"]["nonzero_params"]   # PRQ starts from PRN's model
    assert rows["PRQ"]["train_s"] > rows["PRN"]["train_s"]                  # baseline + the PRN stage
    stages = ResultsDB(db).stages()
    assert sorted(s["kind"] for s in stages) == ["PRN", "baseline"]


def test_w4a8_cells_deploy_int4_full_calibrated_and_after_qat(tmp_path, tiny_spec):
    tiny_spec["techniques"] = ["FIQ", "W4A8", {"name": "W4A8", "qat_epochs": 0.25, "label": "W4A8-QAT"}]
    db = str(tmp_path / "w.db")
    summary = run(tiny_spec, db=db, progress=False)
    assert summary["ran"] == 3 and summary["failed"] == 0
    rows = {r["technique"]: r for r in ResultsDB(db).cells()}
    for label in ("W4A8", "W4A8-QAT"):
        e = eo.deploy.load(os.path.join(summary["engines"], f"{rows[label]['key']}.edgeopt"))
        assert e.scheme == "int4-full" and any(" w4" in r["info"] for r in e.summary())
        assert rows[label]["size_bytes"] < 0.85 * rows["FIQ"]["size_bytes"]   # (a tiny model: per-channel data weighs)
        assert 0 <= rows[label]["acc"] <= 100 and rows[label]["status"] == "ok"
    assert rows["W4A8-QAT"]["technique_s"] > rows["W4A8"]["technique_s"]   # the fine-tuning ran


def test_gptq_rounding_cells_deploy_with_gptq_codes(tmp_path, tiny_spec):
    tiny_spec["techniques"] = [{"name": "INT4", "rounding": "gptq", "label": "INT4-GPTQ"},
                               {"name": "FIQ", "rounding": "gptq", "label": "FIQ-GPTQ"}]
    db = str(tmp_path / "g.db")
    summary = run(tiny_spec, db=db, progress=False)
    assert summary["ran"] == 2 and summary["failed"] == 0
    rows = {r["technique"]: r for r in ResultsDB(db).cells()}
    e = eo.deploy.load(os.path.join(summary["engines"], f"{rows['INT4-GPTQ']['key']}.edgeopt"))
    assert e.scheme == "int4-weight" and e.metadata["weights"] == {"rounding": "gptq"}
    e = eo.deploy.load(os.path.join(summary["engines"], f"{rows['FIQ-GPTQ']['key']}.edgeopt"))
    assert e.scheme == "int8-full" and e.metadata["int8_full"]["rounding"] == "gptq"


def test_bin_cells_with_binary_activations_run_xnor_convs(tmp_path, tiny_spec):
    tiny_spec["techniques"] = [{"name": "BIN", "qat_epochs": 0.25},
                               {"name": "BIN", "qat_epochs": 0.25, "activations": "all", "label": "BIN-all"}]
    db = str(tmp_path / "b.db")
    summary = run(tiny_spec, db=db, progress=False)
    assert summary["ran"] == 2 and summary["failed"] == 0
    rows = {r["technique"]: r for r in ResultsDB(db).cells()}
    ops = {}
    for label in ("BIN", "BIN-all"):
        e = eo.deploy.load(os.path.join(summary["engines"], f"{rows[label]['key']}.edgeopt"))
        assert e.scheme == "binary" and 0 <= rows[label]["acc"] <= 100
        ops[label] = [r["op"] for r in e.summary()].count("b1_conv2d")
    assert ops == {"BIN": 0, "BIN-all": 20}   # weights only; every binarized conv an XNOR conv
    with pytest.raises(ValueError, match="qat_epochs > 0"):   # signs are learned
        techniques.get("BIN").step(None, None, dict(techniques.get("BIN").defaults, activations="own", qat_epochs=0))


@pytest.mark.parametrize("name", ["INT4", "W4A8"])
def test_gptq_rounding_is_refused_on_rows_that_train_with_quantization(name):
    t = techniques.get(name)
    p = dict(t.defaults, rounding="gptq", qat_epochs=1.0)
    with pytest.raises(ValueError, match="post-training rows"):
        t.step(None, None, p)   # refused before touching the model or the data


def test_rerun_skips_finished_cells_and_a_change_reruns_only_what_it_reaches(tiny_db, tmp_path):
    db, _ = tiny_db
    copy_db = str(tmp_path / "r.db")
    with sqlite3.connect(db) as src, sqlite3.connect(copy_db) as dst:
        src.backup(dst)
    assert run(TINY, db=copy_db, progress=False)["ran"] == 0
    spec = json.loads(json.dumps(TINY))
    spec["techniques"][1] = {"name": "BLQ"}
    spec["techniques"][4] = {"name": "QAT", "epochs": 0.5}
    s = run(spec, db=copy_db, progress=False)
    assert s["ran"] == 1 and s["skipped"] == 6


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_spec):
    def broken(model, data, params):
        raise RuntimeError("deliberately broken technique")

    techniques.register("BROKEN_TEST", broken)
    try:
        tiny_spec["techniques"] = ["NQ", "BROKEN_TEST", "F16"]
        s = run(tiny_spec, db=str(tmp_path / "r.db"), progress=False)
        assert s["ran"] == 3 and s["failed"] == 1
        rows = {r["technique"]: r for r in ResultsDB(str(tmp_path / "r.db")).cells()}
        assert rows["BROKEN_TEST"]["status"] == "failed"
        assert "deliberately broken technique" in rows["BROKEN_TEST"]["error"]
        assert "Traceback" in rows["BROKEN_TEST"]["error"]
        assert rows["BROKEN_TEST"]["acc"] is None
        assert rows["NQ"]["status"] == rows["F16"]["status"] == "ok"
        # a failed cell runs again on the next sweep; the finished ones do not
        assert run(tiny_spec, db=str(tmp_path / "r.db"), progress=False)["ran"] == 1
    finally:
        del techniques.TECHNIQUES["BROKEN_TEST"]


def _cli(args, **kw):
    env = dict(os.environ, PYTHONPATH=PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "edgeopt", *args], env=env, start_new_session=True, **kw)


def _toml(spec, path):
    """The tiny spec as TOML (only the shapes it uses)."""
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        return repr(v)
    lines = [f"{k} = {val(v)}" for k, v in spec.items() if not isinstance(v, dict)]
    lines += [f"{k} = {val(v)}" for k, v in spec.items() if isinstance(v, dict)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_kill_9_mid_sweep_loses_no_finished_cell_and_the_rerun_completes(tmp_path, tiny_spec):
    tiny_spec["latency"] = {"runs": 400, "warmup": 1}     # slow cells, so the kill lands mid-sweep
    spec = _toml(tiny_spec, tmp_path / "s.toml")
    db = str(tmp_path / "r.db")
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as f:
        p = _cli(["sweep", spec, "--db", db, "--no-report", "--quiet"], stdout=subprocess.DEVNULL, stderr=f)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and len(_ok_keys(db)) < 2:
        time.sleep(0.02)
    assert p.poll() is None, f"the sweep ended before the kill: {err.read_text()[-2000:]}"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    rows = ResultsDB(db).cells()
    assert 2 <= len(rows) < 7
    assert len({r["key"] for r in rows}) == len(rows)
    assert all(r["status"] == "ok" and all(r[k] is not None for k in METRICS) for r in rows)
    before = {r["key"]: r["finished"] for r in rows}
    s = run(tiny_spec, db=db, progress=False)
    assert s["skipped"] == len(rows) and s["ran"] == 7 - len(rows) and s["failed"] == 0
    after = ResultsDB(db).cells()
    assert len(after) == 7 == len({r["key"] for r in after})
    assert all(before[r["key"]] == r["finished"] for r in after if r["key"] in before)  # not redone
    leftovers = [f for root, _, files in os.walk(tmp_path) for f in files if f.endswith(".tmp")]
    assert leftovers == []


def test_a_pool_worker_killed_mid_sweep_loses_no_finished_cell(tmp_path, tiny_spec):
    import psutil

    tiny_spec["latency"] = {"runs": 400, "warmup": 1}
    spec = _toml(tiny_spec, tmp_path / "s.toml")
    db = str(tmp_path / "r.db")
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as f:
        p = _cli(["sweep", spec, "--db", db, "--no-report", "--quiet", "--executor", "processes:1"],
                 stdout=subprocess.DEVNULL, stderr=f)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and len(_ok_keys(db)) < 2:
        time.sleep(0.02)
    workers = [c for c in psutil.Process(p.pid).children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
    assert p.poll() is None and workers, f"the sweep ended before the kill: {err.read_text()[-2000:]}"
    for w in workers:
        w.send_signal(signal.SIGKILL)
    assert p.wait(timeout=60) == 2
    assert "worker process died" in err.read_text()
    rows = ResultsDB(db).cells()
    assert 2 <= len(rows) < 7 and len({r["key"] for r in rows}) == len(rows)
    assert all(r["status"] == "ok" and all(r[k] is not None for k in METRICS) for r in rows)
    before = {r["key"]: r["finished"] for r in rows}
    s = run(tiny_spec, db=db, progress=False)
    assert s["skipped"] == len(rows) and s["ran"] == 7 - len(rows) and s["failed"] == 0
    after = ResultsDB(db).cells()
    assert len(after) == 7 and all(before[r["key"]] == r["finished"] for r in after if r["key"] in before)


def _ok_keys(db):
    if not os.path.exists(db):
        return []
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT key FROM cells WHERE status='ok'").fetchall()
    except sqlite3.OperationalError:
        return []


def test_dask_local_cluster_gives_the_local_runner_s_results(tiny_db, tmp_path):
    db, _ = tiny_db
    ddb = str(tmp_path / "dask.db")
    # workers get the PYTHONPATH of this test run (edgeopt may not be installed)
    env = {"PYTHONPATH": PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # a stage cache of its own: the workers train the stages again rather than load the local run's
    s = run(TINY, db=ddb, executor="dask", stages=tmp_path / "dask-stages", progress=False, workers_env=env)
    assert s["ran"] == 7 and s["failed"] == 0, [r["error"] for r in ResultsDB(ddb).cells()]
    local = {r["key"]: r for r in ResultsDB(db).cells()}
    remote = {r["key"]: r for r in ResultsDB(ddb).cells()}
    assert local.keys() == remote.keys()
    for k in local:
        assert {m: local[k][m] for m in EXACT} == {m: remote[k][m] for m in EXACT}, local[k]["technique"]


def test_process_pool_executor(tmp_path, tiny_spec):
    tiny_spec["techniques"] = ["NQ", "BLQ"]
    s = run(tiny_spec, db=str(tmp_path / "r.db"), executor="processes:2", progress=False)
    assert s["ran"] == 2 and s["failed"] == 0


def test_executor_strings_are_checked(tiny_spec, tmp_path, monkeypatch):
    for bad in ("threads", "processes:0", "dask://nohost", 3):
        with pytest.raises((ValueError, TypeError), match="executor"):
            run(tiny_spec, db=str(tmp_path / "r.db"), executor=bad, progress=False)
    assert not os.path.exists(tmp_path / "r.db")   # refused before any work
    monkeypatch.setattr(runner, "DASK_CONNECT_TIMEOUT", 1)
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        run(tiny_spec, db=str(tmp_path / "r.db"), executor="dask://127.0.0.1:1", progress=False)


# ----------------------------------------------------------------------------- the database
def test_database_from_a_newer_schema_is_refused(tmp_path):
    db = str(tmp_path / "r.db")
    ResultsDB(db).close()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ValueError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
        ResultsDB(db)


def test_other_files_are_refused(tmp_path):
    p = tmp_path / "junk.db"
    p.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="junk.db"):
        ResultsDB(str(p))
    other = str(tmp_path / "other.db")
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="not an edgeopt results database"):
        ResultsDB(other)


def test_a_locked_database_waits_then_errors(tmp_path):
    db = str(tmp_path / "r.db")
    ResultsDB(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")           # another writer holds the write lock
    try:
        r = ResultsDB(db, timeout=0.5)
        t0 = time.perf_counter()
        with pytest.raises(DatabaseLocked, match="locked by another writer"):
            r.put_cell("k", {"sweep": "s", "model": "m", "dataset": "d", "technique": "t", "seed": 0}, {}, "ok")
        assert time.perf_counter() - t0 >= 0.45     # it waited
        holder.execute("ROLLBACK")
        r.put_cell("k", {"sweep": "s", "model": "m", "dataset": "d", "technique": "t", "seed": 0}, {}, "ok")
        assert [c["key"] for c in r.cells()] == ["k"]
    finally:
        holder.close()


def test_wal_journal_and_one_row_per_key(tmp_path):
    db = str(tmp_path / "r.db")
    r = ResultsDB(db)
    coords = {"sweep": "s", "model": "m", "dataset": "d", "technique": "t", "seed": 0}
    r.put_cell("k", coords, {"a": 1}, "failed", error="boom")
    r.put_cell("k", coords, {"a": 1}, "ok", metrics={"acc": 50.0})
    assert [(c["status"], c["acc"]) for c in r.cells()] == [("ok", 50.0)]
    assert r.finished_keys() == {"k"}
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError, match="unknown names"):
        r.put_cell("k2", coords, {}, "ok", metrics={"accuracy": 1.0})


def test_stage_checkpoint_that_no_longer_matches_its_hash_is_remade(tmp_path, tiny_spec):
    tiny_spec["techniques"] = ["NQ"]
    db = str(tmp_path / "r.db")
    store = run(tiny_spec, db=db, stages=tmp_path / "stages", progress=False)["stages"]
    ckpt = next(os.path.join(store, f) for f in os.listdir(store) if f.startswith("baseline") and f.endswith(".npz"))
    with open(ckpt, "r+b") as f:
        f.seek(os.path.getsize(ckpt) // 2)
        b = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b ^ 0xFF]))
    tiny_spec["latency"] = {"runs": 6, "warmup": 1}            # a new cell on the same stage
    run(tiny_spec, db=db, stages=tmp_path / "stages", progress=False)
    rows = ResultsDB(db).cells()
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert rows[0]["acc"] == rows[1]["acc"]                      # the remade baseline is the same
    np.testing.assert_equal(rows[0]["size_bytes"], rows[1]["size_bytes"])


def test_an_existing_dask_cluster_by_address(tmp_path, tiny_spec):
    from distributed import LocalCluster

    env = {"PYTHONPATH": PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    tiny_spec["techniques"] = ["NQ", "BLQ"]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env=env) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        s = run(tiny_spec, db=str(tmp_path / "r.db"), executor=address, progress=False)
    assert s["ran"] == 2 and s["failed"] == 0
    assert {r["env"]["workers"] for r in ResultsDB(str(tmp_path / "r.db")).cells()} == {"tcp://" + address[7:]}


def test_a_later_sweep_with_another_database_reuses_the_trained_stages(tmp_path, tiny_spec):
    tiny_spec["techniques"] = ["NQ", {"name": "PRN", "finetune_epochs": 0.25}, "PRQ"]
    first = run(tiny_spec, db=str(tmp_path / "a.db"), stages=tmp_path / "stages", progress=False)
    made = {f: os.stat(os.path.join(first["stages"], f)).st_mtime_ns for f in os.listdir(first["stages"])
            if f.endswith(".npz")}
    assert sorted(f.split("-")[0] for f in made) == ["PRN", "baseline"]
    # PRQ's parent is the listed PRN's setting (a PRN left out would mean PRN's defaults: another stage)
    tiny_spec["techniques"] = ["BLQ", {"name": "PRN", "finetune_epochs": 0.25}, "PRQ"]
    run(tiny_spec, db=str(tmp_path / "b.db"), stages=tmp_path / "stages", progress=False)
    assert {f: os.stat(os.path.join(first["stages"], f)).st_mtime_ns for f in made} == made   # nothing retrained
    assert sorted(f for f in os.listdir(first["stages"]) if f.endswith(".npz")) == sorted(made)   # nor added
    a = {r["technique"]: r for r in ResultsDB(str(tmp_path / "a.db")).cells()}
    b = {r["technique"]: r for r in ResultsDB(str(tmp_path / "b.db")).cells()}
    for t in ("PRN", "PRQ"):
        assert {m: a[t][m] for m in EXACT} == {m: b[t][m] for m in EXACT}, t
    assert b["BLQ"]["train_s"] == a["NQ"]["train_s"]      # the baseline's recorded training time


def test_a_user_technique_reaches_spawned_workers(tmp_path, tiny_spec):
    techniques.register("USER_F16_TEST", fp16_step)
    try:
        tiny_spec["techniques"] = ["USER_F16_TEST"]
        s = run(tiny_spec, db=str(tmp_path / "r.db"), executor="processes:1", progress=False)
        (row,) = ResultsDB(str(tmp_path / "r.db")).cells()
        assert s["failed"] == 0, row["error"]
        assert eo.deploy.load(os.path.join(s["engines"], row["key"] + ".edgeopt")).scheme == "fp16"
    finally:
        del techniques.TECHNIQUES["USER_F16_TEST"]


def test_two_processes_asking_for_one_stage_train_it_once(tmp_path):
    import concurrent.futures as cf
    import multiprocessing as mp

    counter = tmp_path / "made.txt"
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        shas = list(pool.map(make_stage_concurrently, [str(tmp_path / "st")] * 2, [str(counter)] * 2))
    assert counter.read_text() == "made\n" and shas[0] == shas[1]


@pytest.mark.parametrize("executor", ["local", "processes:1", "dask"])
def test_the_progress_bar_shows_each_cell_s_stage(tmp_path, tiny_spec, capfd, monkeypatch, executor):
    monkeypatch.setenv("COLUMNS", "200")       # room for the whole postfix
    tiny_spec["techniques"] = ["NQ", "F16"]
    env = {"PYTHONPATH": PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run(tiny_spec, db=str(tmp_path / "r.db"), stages=tmp_path / "stages", executor=executor, progress=True,
        workers_env=env)
    err = capfd.readouterr().err
    assert "2/2" in err and "done resnet20-w0.25/synthetic/" in err
    if executor != "dask":   # Dask delivers a worker's queue messages late at times: best effort there
        assert "resnet20-w0.25/synthetic/NQ/s0: training baseline" in err
        assert "resnet20-w0.25/synthetic/F16/s0: measuring" in err

"""Run a sweep: every cell not yet in the results database, on the executor asked for.

Executors:
  "local"            cells one after another in this process (the default; honest timings,
                     since nothing else runs beside the cell being measured);
  "processes[:N]"    a pool of N worker processes (default 2), started fresh (spawn);
  "dask"             a distributed LocalCluster on this machine (loopback);
  "dask://host:port" an existing Dask cluster (its workers need edgeopt, the datasets, and the
                     stage cache and engine folder on a shared path to share them; otherwise each
                     worker trains its own stages).

Trained stages live in a cache shared by every sweep on the machine (``$EDGEOPT_CACHE/stages``,
default ``~/.cache/edgeopt/stages``), so a later sweep with another database reuses a baseline it
already has; the deployed engines of a database go beside it (``<db>.engines/<cell key>.edgeopt``).

Only this process writes the database, one transaction per finished cell, as results come back
(db.py), so Ctrl-C or kill -9 of the sweep or of a worker loses no finished cell and leaves no
partial one; a rerun finds the finished keys and runs the rest. A cell that raises is recorded
'failed' with its traceback and the sweep goes on (a failed cell runs again on the next sweep).
Workers running side by side share the CPU: their latency figures are noisier than local ones,
and the environment recorded with each cell says how many workers ran.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

from .. import _check, _core
from . import presets, techniques
from .cell import failure, run_cell_job
from .db import ResultsDB
from .spec import load_spec

__all__ = ["run", "parse_executor", "default_stage_cache"]

DASK_CONNECT_TIMEOUT = 20  # seconds to reach an existing scheduler


def parse_executor(executor: str) -> tuple:
    """("local", None) | ("processes", n) | ("dask", None or address)."""
    if not isinstance(executor, str):
        raise TypeError(f"executor: expected a string, got {type(executor).__name__}")
    if executor == "local":
        return "local", None
    if executor == "processes" or executor.startswith("processes:"):
        n = executor.partition(":")[2] or "2"
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"executor: expected 'processes:N' with N >= 1, got {executor!r}")
        return "processes", int(n)
    if executor == "dask":
        return "dask", None
    if executor.startswith("dask://") or executor.startswith("tcp://"):
        addr = executor[len("dask://"):] if executor.startswith("dask://") else executor
        if ":" not in addr:
            raise ValueError(f"executor: expected dask://host:port, got {executor!r}")
        return "dask", "tcp://" + addr
    raise ValueError(f"executor: expected 'local', 'processes[:N]', 'dask' or 'dask://host:port', got {executor!r}")


def _resolve_spec(spec, preset):
    if preset is not None:
        base = presets.get(preset)
        if spec is None:
            return base
        if not isinstance(spec, dict):
            raise TypeError("spec: with a preset, pass the overrides as a dict")
        return {**base, **spec}
    if spec is None:
        raise ValueError("spec: give a spec (a TOML path or a dict) or a preset")
    return spec


def default_stage_cache() -> str:
    root = os.environ.get("EDGEOPT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "edgeopt")
    return os.path.join(root, "stages")


LOCAL_DASK_WORKERS = 2


def run(spec=None, db="results.db", executor: str = "local", preset: str | None = None, stages=None,
        threads: int | None = None, progress: bool = True, timeout: float = 30.0, workers_env=None) -> dict:
    """Run the cells of `spec` (a TOML path, a dict, or None with a preset) that `db` lacks.

    stages: the folder of trained stages (default: the machine-wide cache, module docstring).
    threads: per cell, overriding the spec's; by default the spec's, else the cores divided among
    the executor's workers. timeout: seconds to wait for a database another writer holds.
    workers_env: environment variables for Dask LocalCluster workers. Returns {'sweep', 'cells',
    'skipped', 'ran', 'failed', 'db', 'stages', 'engines', 'seconds'}."""
    t_start = time.perf_counter()
    kind, arg = parse_executor(executor)
    if kind == "dask":
        _require_distributed()
    _check.check_bool("progress", progress)
    raw = _resolve_spec(spec, preset)
    if threads is not None:
        threads = _check.check_int("threads", threads, 1, 1024)
    elif kind != "local" and not (isinstance(raw, dict) and "threads" in raw):
        workers = arg if kind == "processes" else LOCAL_DASK_WORKERS if arg is None else 1
        threads = max(1, (os.cpu_count() or 1) // workers)
    spec = load_spec(raw, threads=threads)       # everything validated before any work
    results = ResultsDB(db, timeout=timeout)
    store = (os.path.abspath(os.fspath(stages)) if stages is not None else default_stage_cache(),
             os.path.abspath(os.fspath(db)) + ".engines")
    cells = spec.cells()
    done = results.finished_keys()
    todo = [c for c in cells if c.key not in done]
    summary = {"sweep": spec.name, "cells": len(cells), "skipped": len(cells) - len(todo), "ran": 0, "failed": 0,
               "db": os.path.abspath(os.fspath(db)), "stages": store[0], "engines": store[1]}
    bar = _bar(progress, len(todo))

    def record(cell, out):
        if "error" in out:
            results.put_cell(cell.key, cell.coords, cell.config, "failed", error=out["error"], env=out.get("env"),
                             finished=out.get("finished"))
            summary["failed"] += 1
            if bar is None:
                print(f"edgeopt sweep: {cell} failed:\n{out['error']}", file=sys.stderr)
        else:
            env = dict(out["env"], workers=1 if kind == "local" else (arg or "cluster"))
            results.put_cell(cell.key, cell.coords, cell.config, "ok", metrics=out["metrics"], env=env,
                             started=out["started"], finished=out["finished"], stages=out["stages"])
        summary["ran"] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"done {cell}" + (f" ({summary['failed']} failed)" if summary["failed"] else ""))

    threads_before = _core.runtime.get_num_threads()
    try:
        if kind == "local":
            _run_local(todo, store, bar, record)
        elif kind == "processes":
            _run_pool(todo, store, arg, record, bar)
        else:
            _run_dask(todo, store, arg, record, bar, workers_env)
    finally:
        _core.runtime.set_num_threads(threads_before)   # cells set theirs
        if bar is not None:
            bar.close()
        results.close()
    summary["seconds"] = time.perf_counter() - t_start
    return summary


def _bar(enabled: bool, total: int):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep", unit="cell", dynamic_ncols=True)


def _extra_techniques() -> dict:
    """Techniques registered after import (by the user): a spawned or remote worker imports only
    the built-in ones, so these travel with each job."""
    return {n: t for n, t in techniques.TECHNIQUES.items() if n not in techniques.BUILTIN}


class _QueueStage:
    """A worker's stage callback: (cell, text) into a queue the driver's progress bar reads."""

    def __init__(self, queue, cell: str):
        self.queue, self.cell = queue, cell

    def __call__(self, text: str) -> None:
        try:
            self.queue.put((self.cell, text))
        except Exception:  # noqa: BLE001 - a lost progress message must never fail a cell
            pass


@contextlib.contextmanager
def _stages_to_bar(bar, get):
    """While the block runs, a thread shows the stages workers report (get(timeout) -> (cell,
    text), raising on timeout) in the bar's postfix."""
    if bar is None:
        yield
        return
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            try:
                cell, text = get(0.2)
            except Exception:  # noqa: BLE001 - a timeout (queue.Empty, Dask's TimeoutError), or the queue closed
                continue
            bar.set_postfix_str(f"{cell}: {text}")

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=2)


def _run_local(todo, store, bar, record) -> None:
    for cell in todo:
        def stage(text, cell=cell):
            if bar is not None:
                bar.set_postfix_str(f"{cell}: {text}")
        record(cell, run_cell_job(cell.config, *store, cell.datasets, stage))


def _run_pool(todo, store, n, record, bar) -> None:
    import concurrent.futures as cf
    import multiprocessing as mp

    # spawn: a forked child would inherit the parent's thread pools mid-state
    ctx = mp.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx)
    manager = ctx.Manager() if bar is not None else None
    queue = manager.Queue() if manager is not None else None
    extra = _extra_techniques()
    try:
        futures = {pool.submit(run_cell_job, c.config, *store, c.datasets,
                               _QueueStage(queue, str(c)) if queue is not None else None, extra): c for c in todo}
        with _stages_to_bar(bar, lambda timeout: queue.get(timeout=timeout)):
            for f in cf.as_completed(futures):
                try:
                    out = f.result()
                except cf.process.BrokenProcessPool:
                    raise RuntimeError("a sweep worker process died (killed, or out of memory); the finished "
                                       "cells are saved, rerun the sweep to run the rest") from None
                record(futures[f], out)
    except BaseException:
        # do not wait for running cells (minutes of training whose results would be dropped)
        for p in list(getattr(pool, "_processes", {}).values()):
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if manager is not None:
            manager.shutdown()
    pool.shutdown()


def _require_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError("executor 'dask' needs Dask's distributed scheduler: pip install 'dask[distributed]'") from None


def _run_dask(todo, store, address, record, bar, workers_env) -> None:
    import traceback
    import uuid

    from distributed import Client, LocalCluster, Queue, as_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=LOCAL_DASK_WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, env=workers_env or {})
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=f"{DASK_CONNECT_TIMEOUT}s")
        except OSError as e:
            raise ConnectionError(f"executor: no Dask scheduler at {address} ({e})") from None
    extra = _extra_techniques()
    try:
        queue = Queue(f"edgeopt-sweep-{uuid.uuid4().hex}", client=client) if bar is not None else None
        futures = {client.submit(run_cell_job, c.config, *store, c.datasets,
                                 _QueueStage(queue, str(c)) if queue is not None else None, extra,
                                 pure=False, key=f"cell-{c.key}"): c for c in todo}
        with _stages_to_bar(bar, lambda timeout: queue.get(timeout=timeout)):
            for f in as_completed(futures):
                try:
                    out = f.result()
                except Exception:  # noqa: BLE001 - a worker lost or killed: the cell is recorded, the rest go on
                    out = failure(traceback.format_exc(), futures[f].config)
                record(futures[f], out)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

"""The results database: one SQLite file per sweep family, WAL journal, one transaction per cell.

Tables (schema version ``SCHEMA_VERSION``, kept in ``meta``):

- ``cells``: one row per finished cell, keyed by the cell's hash (spec.py ``Cell.key``): its
  coordinates (sweep, model, dataset, technique, seed) as columns for queries, the full
  configuration as JSON, ``status`` 'ok' or 'failed', the metrics (``METRICS``, one column each;
  NULL for a failed cell), ``error`` (the traceback of a failed cell), ``env`` (JSON: CPU model, ISA
  path, threads, versions, git revision) and the wall-clock start and end.
- ``stages``: the shared training stages (an fp32 baseline, a pruned model) a cell started from:
  key, kind, the checkpoint's path and sha256 (its content address) and how long it took to make.

A row is written whole in one transaction (INSERT OR REPLACE on the key), so a killed sweep leaves
either the finished row or nothing, never half a cell and never two rows for one cell. A writer
that finds the file locked waits up to ``timeout`` seconds, then raises ``DatabaseLocked``.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time

__all__ = ["ResultsDB", "DatabaseLocked", "SCHEMA_VERSION", "METRICS", "COORDS"]

SCHEMA_VERSION = 1

# name -> (SQL type, description); the order is the column order of tables and CSV exports
METRICS = {
    "acc": ("REAL", "top-1 test accuracy of the deployed Engine, %"),
    "top5": ("REAL", "top-5 test accuracy of the deployed Engine, %"),
    "size_bytes": ("INTEGER", "bytes of the saved .edgeopt file"),
    "lat_median_ms": ("REAL", "batch-1 latency of the Engine, median, ms"),
    "lat_p90_ms": ("REAL", "batch-1 latency of the Engine, 90th percentile, ms"),
    "test_time_ms": ("REAL", "time the Engine takes to classify the whole test set one image per call (the study's Lat), ms"),
    "test_images": ("INTEGER", "images in the test set that test_time_ms classified"),
    "macs": ("INTEGER", "multiply-accumulates per image of the deployed model"),
    "params": ("INTEGER", "parameters of the deployed model"),
    "nonzero_params": ("INTEGER", "parameters that are not zero (pruning)"),
    "peak_activation_bytes": ("INTEGER", "the Engine's activation arena for one image, bytes"),
    "train_s": ("REAL", "training time of the stages the cell started from (baseline, parents), s"),
    "technique_s": ("REAL", "time of the cell's own technique step (fine-tuning, calibration), s"),
    "deploy_s": ("REAL", "time to compile the Engine, s"),
}
COORDS = ("sweep", "model", "dataset", "technique", "seed")


class DatabaseLocked(TimeoutError):
    """Another writer held the results database longer than the timeout."""


class ResultsDB:
    """A results database (created when missing). ``timeout``: seconds a write waits for another
    writer before DatabaseLocked."""

    def __init__(self, path, timeout: float = 30.0, create: bool = True):
        self.path = os.fspath(path)
        if not create and not os.path.exists(self.path):
            raise FileNotFoundError(f"results database {self.path!r} does not exist")
        self.timeout = float(timeout)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        try:
            self._con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            self._execute("PRAGMA journal_mode=WAL")
            self._execute("PRAGMA synchronous=FULL")
            self._init_schema()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise DatabaseLocked(self._locked_message()) from None
            raise ValueError(f"results database {self.path!r}: not a readable SQLite file ({e})") from None

    # --------------------------------------------------------------------------------- plumbing
    def _locked_message(self) -> str:
        return (f"results database {self.path!r} is locked by another writer (waited {self.timeout:g} s); "
                f"is another sweep writing to it?")

    def _execute(self, sql: str, args=()):
        try:
            return self._con.execute(sql, args)
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise DatabaseLocked(self._locked_message()) from None
            raise

    def _transaction(self, statements):
        """Run [(sql, args)] in one IMMEDIATE transaction (the write lock taken up front)."""
        self._execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                self._con.execute(sql, args)
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise

    def _init_schema(self) -> None:
        have = {r[0] for r in self._execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in have:
            row = self._execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row and str(row[0]).isdigit() else None
            if version is None:
                raise ValueError(f"results database {self.path!r}: no valid schema version in its meta table")
            if version > SCHEMA_VERSION:
                raise ValueError(f"results database {self.path!r} has schema version {version}, newer than this "
                                 f"edgeopt's {SCHEMA_VERSION}; upgrade edgeopt to read it")
            return
        if have:
            raise ValueError(f"results database {self.path!r}: an SQLite file with other tables "
                             f"({', '.join(sorted(have))}), not an edgeopt results database")
        metric_cols = ",\n".join(f"  {k} {t}" for k, (t, _) in METRICS.items())
        self._transaction([
            ("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", ()),
            ("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)),
            (f"""CREATE TABLE cells (
  key TEXT PRIMARY KEY,
  sweep TEXT NOT NULL, model TEXT NOT NULL, dataset TEXT NOT NULL, technique TEXT NOT NULL,
  seed INTEGER NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
{metric_cols},
  error TEXT, env TEXT, started REAL, finished REAL)""", ()),
            ("""CREATE TABLE stages (
  key TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
  seconds REAL NOT NULL, config TEXT NOT NULL, created REAL NOT NULL)""", ()),
        ])

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --------------------------------------------------------------------------------- cells
    def put_cell(self, key: str, coords: dict, config: dict, status: str, metrics: dict | None = None,
                 error: str | None = None, env: dict | None = None, started: float | None = None,
                 finished: float | None = None, stages=()) -> None:
        """Write one cell's row (replacing an earlier row of the same key), with the records of
        the stages it used (stages.py), in one transaction."""
        metrics = metrics or {}
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"metrics: unknown names {sorted(unknown)}")
        cols = ["key", *COORDS, "config", "status", *METRICS, "error", "env", "started", "finished"]
        vals = [key, *(coords[c] for c in COORDS), json.dumps(config, sort_keys=True), status,
                *(metrics.get(k) for k in METRICS), error, json.dumps(env or {}, sort_keys=True),
                started, finished if finished is not None else time.time()]
        sql = f"INSERT OR REPLACE INTO cells ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self._transaction([(sql, vals)] + [self._stage_row(s) for s in stages])

    def finished_keys(self) -> set:
        """Keys of the cells that finished ('ok'); a failed cell runs again on the next sweep."""
        return {r[0] for r in self._execute("SELECT key FROM cells WHERE status='ok'")}

    def cells(self, sweep: str | None = None, status: str | None = None) -> list:
        """Rows as dicts (config and env parsed), in insertion order."""
        where, args = [], []
        if sweep is not None:
            where.append("sweep=?")
            args.append(sweep)
        if status is not None:
            where.append("status=?")
            args.append(status)
        sql = "SELECT * FROM cells" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY rowid"
        cur = self._execute(sql, args)
        names = [d[0] for d in cur.description]
        rows = []
        for r in cur.fetchall():
            row = dict(zip(names, r))
            row["config"] = json.loads(row["config"])
            row["env"] = json.loads(row["env"]) if row["env"] else {}
            rows.append(row)
        return rows

    # --------------------------------------------------------------------------------- stages
    @staticmethod
    def _stage_row(s: dict):
        """A stage record as an upsert that keeps its first 'created' unless it was remade."""
        return ("INSERT INTO stages VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "path=excluded.path, sha256=excluded.sha256, seconds=excluded.seconds, config=excluded.config, "
                "created=excluded.created WHERE stages.sha256 != excluded.sha256",
                (s["key"], s["kind"], s["path"], s["sha256"], s["seconds"], json.dumps(s["config"], sort_keys=True),
                 time.time()))

    def stages(self) -> list:
        cur = self._execute("SELECT * FROM stages ORDER BY rowid")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

"""Experiment sweeps: models x datasets x techniques, measured on the deployed Engine.

    eo.sweep.run("sweep.toml", db="results.db")        # or a dict, or preset="quick"
    eo.sweep.report("results.db", out="report/")       # markdown, CSV, HTML, plots

spec.py (the spec and its cells), techniques.py (the registry), stages.py (shared trained
checkpoints), cell.py (one cell, deployed and measured), runner.py (local / process pool / Dask),
db.py (SQLite results), report.py (tables, plots, advisor, the study's figures).
"""
from . import presets
from .db import DatabaseLocked, ResultsDB
from .report import report
from .report import tables_markdown as _tables
from .runner import run
from .spec import SpecError, load_spec
from .techniques import StepData, Technique, register


def tables_markdown(db, sweep: str | None = None) -> str:
    """The study-layout tables of a results database (a path or a ResultsDB), as markdown; sweep:
    only that sweep's cells."""
    if isinstance(db, ResultsDB):
        return _tables(db.cells(sweep=sweep))
    with ResultsDB(db, create=False) as r:
        return _tables(r.cells(sweep=sweep))


__all__ = ["run", "report", "tables_markdown", "load_spec", "SpecError", "ResultsDB", "DatabaseLocked",
           "register", "Technique", "StepData", "presets"]

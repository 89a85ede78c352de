"""One cell, start to finish: its stages, its technique, the deployed Engine and its measurements.

Everything a cell reports is measured on what would ship: accuracy and top-5 are the deployed
Engine's on the test set, size is the bytes of the saved .edgeopt file (kept as
``<engines>/<cell key>.edgeopt``), latency is the Engine timed on this CPU at batch 1, and the
study's "Lat" is the wall time to classify the whole test set with it.

``run_cell`` runs in whatever process the executor picked (the sweep's own, a pool worker, a Dask
worker): it takes only the cell's JSON config, the stage and engine folders and any Dataset
objects the spec passed, and returns plain data.
"""
from __future__ import annotations

import copy
import functools
import math
import os
import platform
import subprocess
import time

import numpy as np

from .. import _core, deploy, models, train
from ..random import manual_seed
from . import techniques
from .spec import config_hash, load_dataset, stage_key
from .stages import StageStore

__all__ = ["run_cell", "environment", "cpu_model"]


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (what results and benchmark notes say they ran on)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _git_revision():
    """The source checkout's commit, when edgeopt runs from one (None for an installed wheel)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # .../python/edgeopt
    try:
        out = subprocess.run(["git", "-C", package, "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    # an installed package inside some other repository (a venv in a project) is not a checkout
    if out.returncode != 0 or len(lines) != 2 or \
            os.path.realpath(os.path.join(lines[0], "python", "edgeopt")) != os.path.realpath(package):
        return None
    return lines[1]


def environment(threads: int) -> dict:
    from .._version import __version__

    return {"cpu": cpu_model(), "isa": _core.runtime.active_isa(), "threads": threads,
            "cores": os.cpu_count(), "host": platform.node(),
            "versions": {"edgeopt": __version__, "numpy": np.__version__, "python": platform.python_version()},
            "git": _git_revision()}


def _data(cfg: dict, given: dict):
    """(train subset, held-out validation images, test subset, calibration set, input shape,
    classes) of a cell. Validation (what MIX chooses bit-widths on) comes from the training images
    the subset leaves out, else from the end of the subset, never from the test set."""
    d, b = cfg["dataset"], cfg["budget"]
    full, te = load_dataset(d, given.get(d["name"]))
    tr = full.subset(range(min(b["subset"], len(full)))) if b["subset"] else full
    val = full.subset(range(len(tr), len(full))) if len(tr) < len(full) else tr.subset(range(len(tr) // 2, len(tr)))
    if b["test_subset"]:
        te = te.subset(range(min(b["test_subset"], len(te))))
    # calibration images: a seeded draw from the training subset, the same for every technique
    pick = np.random.default_rng(cfg["seed"]).permutation(len(tr))[:cfg["calibration"]]
    calib = tr.subset(np.sort(pick))
    classes = cfg["model"]["num_classes"] or int(max(tr.y.max(), te.y.max())) + 1
    return tr, val, te, calib, (1,) + tuple(tr.x.shape[1:]), classes


def _fit_budget(model, tr, b: dict, seed: int) -> None:
    """Train for the budget's epochs; a fraction below 1 is one epoch over that share of `tr`."""
    epochs = b["epochs"]
    if epochs < 1:
        tr = tr.subset(range(max(1, int(round(epochs * len(tr))))))
    train.fit(model, tr, epochs=max(1, int(epochs)), batch_size=b["batch_size"], lr=b["lr"],
              schedule=b["schedule"], weight_decay=b["weight_decay"], seed=seed,
              augment="crop_flip" if b["augment"] else None, progress=False)


def _count_params(model) -> tuple:
    """(parameters, non-zero parameters) of the model that deploys (pruning shows in the second)."""
    total = nonzero = 0
    for p in model.parameters():
        total += p.data.size
        nonzero += int(np.count_nonzero(p.data))
    return total, nonzero


def run_cell(config: dict, stages_dir: str, engines_dir: str, given: dict | None = None,
             stage=lambda text: None) -> dict:
    """Run one cell; returns {'metrics', 'env', 'stages', 'started', 'finished'}. Raises on failure
    (the runner records the traceback)."""
    given = given or {}
    started = time.time()
    threads = config["threads"]
    _core.runtime.set_num_threads(threads)
    store = StageStore(stages_dir)
    tr, val, te, calib, input_shape, classes = _data(config, given)
    mc, b, seed = config["model"], config["budget"], config["seed"]

    def new_model():
        manual_seed(seed)
        return models.create(mc["name"], num_classes=classes, in_channels=input_shape[1], width_mult=mc["width"])

    def make_baseline():
        m = new_model()
        _fit_budget(m, tr, b, seed)
        return m

    step_data = techniques.StepData(train=tr, val=val, test=te, calib=calib, budget=b, seed=seed,
                                    input_shape=input_shape, stage=stage)
    model, rec = store.get("baseline", stage_key(config), {k: config[k] for k in ("model", "dataset", "budget", "seed")},
                           new_model, make_baseline, stage)
    records = [rec]
    macs = models.summary(model, input_shape).macs   # the architecture's (pruning zeros still multiply)

    def technique_stage(start, tconf: dict):
        """(model, deploy kwargs, seconds, record) of a technique whose output other cells share."""
        tech = techniques.get(tconf["name"])
        kw = {}

        def make():
            stage(f"{tech.name} (shared stage)")
            out, kw["deploy"] = tech.step(copy.deepcopy(start), step_data, dict(tconf["params"]))
            out.input_norm = start.input_norm
            return out

        m, r = store.get(tech.name, stage_key(config, tconf), {"technique": tconf}, new_model, make, stage,
                         extra=lambda: {"deploy": kw["deploy"]})
        return m, r["deploy"], r["seconds"], r

    if config["parent"] is not None:
        model, _, _, rec = technique_stage(model, config["parent"])
        records.append(rec)
    tconf, shared = config["technique"], []
    if techniques.get(tconf["name"]).cached:
        model, deploy_kw, technique_s, own = technique_stage(model, tconf)
        shared = [own]
    else:
        stage(tconf["name"])
        t0 = time.perf_counter()
        norm = model.input_norm
        model, deploy_kw = techniques.get(tconf["name"]).step(copy.deepcopy(model), step_data, dict(tconf["params"]))
        model.input_norm = norm
        technique_s = time.perf_counter() - t0

    stage("deploying")
    t0 = time.perf_counter()
    engine = deploy.compile(model, input_shape=input_shape, **deploy_kw)
    deploy_s = time.perf_counter() - t0
    engine_path = os.path.join(engines_dir, f"{config_hash(config)}.edgeopt")
    engine.save(engine_path)
    size = os.path.getsize(engine_path)

    stage("measuring")
    # one image per Engine call: the study's Lat (the whole test set), and the accuracy with it
    r = train.evaluate(engine, te, per_image=True)
    test_ms = r["run_ms"]
    lat = deploy.latency(engine, batch=1, warmup=config["latency"]["warmup"], runs=config["latency"]["runs"],
                         seed=seed)
    params, nonzero = _count_params(model)
    metrics = {"acc": 100.0 * r["acc"], "top5": 100.0 * r["top5"], "size_bytes": size,
               "lat_median_ms": lat["median_ms"], "lat_p90_ms": lat["p90_ms"], "test_time_ms": test_ms,
               "test_images": len(te), "macs": macs, "params": params, "nonzero_params": nonzero,
               "peak_activation_bytes": engine.peak_activation_bytes,
               "train_s": sum(rec["seconds"] for rec in records), "technique_s": technique_s, "deploy_s": deploy_s}
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f"non-finite measurement(s): {', '.join(bad)}")
    return {"metrics": metrics, "env": environment(threads), "stages": records + shared, "started": started,
            "finished": time.time()}


def run_cell_job(config: dict, stages_dir: str, engines_dir: str, given: dict | None = None,
                 stage=None, extra_techniques: dict | None = None) -> dict:
    """run_cell for any executor: failures come back as data ({'error': traceback}) so one bad
    cell never stops the sweep, with the traceback formatted where it happened. extra_techniques:
    techniques registered in the driver that a fresh worker process does not know."""
    import traceback

    for name, t in (extra_techniques or {}).items():
        techniques.TECHNIQUES.setdefault(name, t)
    try:
        return run_cell(config, stages_dir, engines_dir, given, stage or (lambda text: None))
    except Exception:  # noqa: BLE001 - every failure is recorded with its traceback
        return failure(traceback.format_exc(), config)


def failure(error: str, config: dict) -> dict:
    return {"error": error, "env": environment(config["threads"]), "finished": time.time()}


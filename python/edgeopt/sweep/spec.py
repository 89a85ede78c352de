"""A sweep spec: what to run, validated in full before any work starts, and the cells it expands to.

A spec is a TOML file or a dict:

    name = "my-sweep"
    seeds = [0]
    calibration = 200                 # calibration images (from the training set) for FIQ / MIX / PRQ
    threads = 2                       # default: all cores
    techniques = ["NQ", "BLQ", "FIQ", {name = "PRN", sparsity = 0.9}]
    [budget]                          # training of the fp32 baseline (and fine-tuning defaults)
    epochs = 2                        # an int, or a fraction of an epoch below 1
    subset = 10000                    # train on the first N images (0: all)
    test_subset = 0                   # measure on the first N test images (0: all)
    batch_size = 128
    lr = 0.1
    [[models]]
    name = "resnet20"
    width = 1.0                       # num_classes / in_channels default to the dataset's
    budget = {epochs = 3}             # per-model overrides of [budget]
    [[datasets]]
    name = "fashion-mnist"            # or cifar10 / cifar100 (with root) / synthetic

In a dict, a dataset may also be {"name": "mine", "train": Dataset, "test": Dataset}. A technique
entry is a registered name (techniques.py) or a table {name, label?, **params}; ``label`` tells
two settings of one technique apart (e.g. PRN-50 and PRN-90).

A cell is one (model, dataset, seed, technique). Its key is a hash of its whole configuration
(including the parent stages' settings and the edgeopt version), so a rerun skips finished cells
and a changed parameter re-runs only the cells it reaches.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os

import numpy as np

from .. import _core
from .._version import __version__
from ..data.dataset import Dataset
from . import techniques

__all__ = ["Spec", "Cell", "load_spec", "DEFAULT_BUDGET", "DATASETS", "stage_key", "config_hash"]

DEFAULT_BUDGET = {"epochs": 1.0, "subset": 0, "test_subset": 0, "batch_size": 128, "lr": 0.1,
                  "weight_decay": 5e-4, "schedule": "cosine", "augment": False}
DEFAULT_LATENCY = {"runs": 100, "warmup": 10}
DATASETS = ("fashion-mnist", "cifar10", "cifar100", "synthetic")
_SYNTHETIC = {"num_classes": 10, "shape": [1, 28, 28], "n_train": 1000, "n_test": 200}
_TOP = {"name", "models", "datasets", "techniques", "budget", "seeds", "calibration", "threads", "latency"}


def config_hash(obj) -> str:
    """The sha256 of canonical JSON: the address of a cell or a stage."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def stage_key(cell_config: dict, technique: dict | None = None) -> str:
    """Key of a trained model cells share: the fp32 baseline (technique=None) or the output of a
    technique ({name, params}) run on it. Timing settings are left out: they change no weights."""
    base = {k: cell_config[k] for k in ("model", "dataset", "seed", "threads", "version")}
    base["budget"] = {k: v for k, v in cell_config["budget"].items() if k != "test_subset"}
    if technique is not None:
        base["technique"] = {"name": technique["name"], "params": technique["params"]}
    return config_hash(base)


@dataclasses.dataclass
class Cell:
    config: dict                 # JSON-able: everything that decides the cell's results
    datasets: dict               # name -> (train, test) for datasets given as objects (not hashed)

    @property
    def key(self) -> str:
        return config_hash(self.config)

    @property
    def coords(self) -> dict:
        c = self.config
        return {"sweep": c["sweep"], "model": c["model"]["label"], "dataset": c["dataset"]["name"],
                "technique": c["technique"]["label"], "seed": c["seed"]}

    def __str__(self) -> str:
        c = self.coords
        return f"{c['model']}/{c['dataset']}/{c['technique']}/s{c['seed']}"


# ------------------------------------------------------------------------------------ checks
class SpecError(ValueError):
    """A spec that cannot run; the message names the field."""


def _type(field, v, types, what):
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SpecError(f"{field}: expected {what}, got {v!r}")
    if not isinstance(v, types):
        raise SpecError(f"{field}: expected {what}, got {v!r} ({type(v).__name__})")
    return v


def _number(field, v, lo=None, integer=False):
    _type(field, v, int if integer else (int, float), "an integer" if integer else "a number")
    if not np.isfinite(v) or (lo is not None and v < lo):
        raise SpecError(f"{field}: expected a finite {'integer' if integer else 'number'}"
                        f"{f' >= {lo}' if lo is not None else ''}, got {v!r}")
    return v if integer else float(v)


def _keys(field, d, allowed):
    _type(field, d, dict, "a table")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise SpecError(f"{field}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}")


def _budget(field, b, base):
    _keys(field, b, DEFAULT_BUDGET)
    out = dict(base)
    for k, v in b.items():
        f = f"{field}.{k}"
        if k in ("subset", "test_subset", "batch_size"):
            out[k] = _number(f, v, 0 if k != "batch_size" else 1, integer=True)
        elif k == "epochs":
            out[k] = _number(f, v, 0)
            if out[k] == 0:
                raise SpecError(f"{f}: expected more than 0 epochs, got {v!r}")
            if out[k] > 1 and out[k] != int(out[k]):
                raise SpecError(f"{f}: expected a whole number of epochs, or a fraction below 1, got {v!r}")
        elif k in ("lr", "weight_decay"):
            out[k] = _number(f, v, 0)
        elif k == "schedule":
            if v not in ("cosine", "step", "constant"):
                raise SpecError(f"{f}: expected 'cosine', 'step' or 'constant', got {v!r}")
            out[k] = v
        elif k == "augment":
            out[k] = _type(f, v, bool, "true or false")
    return out


def _model(field, m, budget):
    from .. import models

    if isinstance(m, str):
        m = {"name": m}
    _keys(field, m, {"name", "width", "num_classes", "in_channels", "budget", "label"})
    name = _type(f"{field}.name", m.get("name"), str, "a model name")
    if name not in models.available():
        raise SpecError(f"{field}.name: unknown model {name!r}; available: {', '.join(models.available())}")
    out = {"name": name, "width": _number(f"{field}.width", m.get("width", 1.0), 0.01),
           "num_classes": None, "in_channels": None}
    for k in ("num_classes", "in_channels"):
        if m.get(k) is not None:
            out[k] = _number(f"{field}.{k}", m[k], 1, integer=True)
    out["label"] = m.get("label") or (name if out["width"] == 1.0 else f"{name}-w{out['width']:g}")
    _type(f"{field}.label", out["label"], str, "a string")
    return out, _budget(f"{field}.budget", m.get("budget", {}), budget)


def _dataset(field, d):
    if isinstance(d, str):
        d = {"name": d}
    _type(field, d, dict, "a dataset name or table")
    name = _type(f"{field}.name", d.get("name"), str, "a dataset name")
    if "train" in d or "test" in d:  # given as objects
        _keys(field, d, {"name", "train", "test"})
        for k in ("train", "test"):
            if not isinstance(d.get(k), Dataset):
                raise SpecError(f"{field}.{k}: expected an edgeopt.data.Dataset, got {type(d.get(k)).__name__}")
        given = (d["train"], d["test"])
        return {"name": name, "fingerprint": _fingerprint(given)}, given, _facts(given)
    if name not in DATASETS:
        raise SpecError(f"{field}.name: unknown dataset {name!r}; expected one of {', '.join(DATASETS)} "
                        f"or a table with 'train' and 'test' Datasets")
    if name == "synthetic":
        _keys(field, d, {"name", *_SYNTHETIC})
        out = {"name": name, **_SYNTHETIC, **{k: v for k, v in d.items() if k != "name"}}
        for k in ("num_classes", "n_train", "n_test"):
            _number(f"{field}.{k}", out[k], 2 if k == "num_classes" else 1, integer=True)
        shape = _type(f"{field}.shape", out["shape"], (list, tuple), "[C, H, W]")
        if len(shape) != 3:
            raise SpecError(f"{field}.shape: expected [C, H, W], got {shape!r}")
        out["shape"] = [_number(f"{field}.shape[{i}]", s, 1, integer=True) for i, s in enumerate(shape)]
        return out, None, _facts(load_dataset(out))
    _keys(field, d, {"name", "root"})
    root = d.get("root")
    if root is not None:
        _type(f"{field}.root", root, str, "a folder path")
        if not os.path.isdir(root):
            raise SpecError(f"{field}.root: {root!r} is not a folder")
        root = os.path.abspath(root)
    elif name != "fashion-mnist" and not os.environ.get("EDGEOPT_DATA"):
        raise SpecError(f"{field}.root: {name} needs the folder holding its files (no downloads at run time)")
    out = {"name": name, "root": root}
    try:  # a missing dataset fails here, before any work
        data = load_dataset(out)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise SpecError(f"{field}: {e}") from None
    # the files found (root, $EDGEOPT_DATA or the system copy) are part of what a cell depends on
    out["fingerprint"] = _fingerprint(data)
    return out, None, _facts(data)


def _fingerprint(data) -> str:
    fp = hashlib.sha256()
    for ds in data:
        fp.update(np.ascontiguousarray(ds.x).tobytes())
        fp.update(np.ascontiguousarray(ds.y).tobytes())
    return fp.hexdigest()[:20]


def _facts(data) -> dict:
    """What a model must fit: image channels and the number of classes (largest label + 1)."""
    train, test = data
    return {"channels": int(train.x.shape[1]), "classes": int(max(train.y.max(), test.y.max())) + 1}


def load_dataset(d: dict, given=None):
    """(train, test) of a spec dataset entry."""
    from .. import data

    if given is not None:
        return given
    if d["name"] == "fashion-mnist":
        return data.fashion_mnist(d["root"])
    if d["name"] in ("cifar10", "cifar100"):
        return getattr(data, d["name"])(d["root"])
    return data.synthetic(num_classes=d["num_classes"], shape=tuple(d["shape"]), n_train=d["n_train"],
                          n_test=d["n_test"], seed=0)


def _technique(field, t):
    if isinstance(t, str):
        t = {"name": t}
    _type(field, t, dict, "a technique name or table")
    name = _type(f"{field}.name", t.get("name"), str, "a technique name")
    if name not in techniques.TECHNIQUES:
        raise SpecError(f"{field}.name: unknown technique {name!r}; registered: {', '.join(techniques.names())}")
    tech = techniques.get(name)
    params = {k: v for k, v in t.items() if k not in ("name", "label")}
    _keys(field, params, tech.defaults)
    merged = dict(tech.defaults)
    for k, v in params.items():
        d = tech.defaults[k]
        f = f"{field}.{k}"
        if isinstance(d, bool):
            merged[k] = _type(f, v, bool, "true or false")
        elif isinstance(d, int):
            merged[k] = _number(f, v, 0, integer=True)
        elif isinstance(d, float):
            merged[k] = _number(f, v, 0)
        else:
            merged[k] = _type(f, v, type(d), type(d).__name__)
        if k in tech.ranges and not tech.ranges[k][0] <= merged[k] <= tech.ranges[k][1]:
            raise SpecError(f"{f}: expected a value in [{tech.ranges[k][0]:g}, {tech.ranges[k][1]:g}], got {v!r}")
        if k in tech.choices and merged[k] not in tech.choices[k]:
            raise SpecError(f"{f}: expected one of {', '.join(map(repr, tech.choices[k]))}, got {v!r}")
    if tech.check is not None:
        try:
            tech.check(merged)
        except ValueError as e:
            raise SpecError(f"{field}.{e}") from None
    label = _type(f"{field}.label", t.get("label", name), str, "a string")
    return {"name": name, "label": label, "params": merged}


# ------------------------------------------------------------------------------------ the spec
@dataclasses.dataclass
class Spec:
    name: str
    models: list             # [(model config, budget)]
    datasets: list           # [(dataset config, given (train, test) or None, {channels, classes})]
    techniques: list         # [technique config]
    seeds: list
    calibration: int
    threads: int
    latency: dict

    def cells(self) -> list:
        """Every (model, dataset, seed, technique), baselines grouped: the cells sharing a stage
        are adjacent, parents before children."""
        order = {n: i for i, n in enumerate(techniques.names())}
        techs = sorted(self.techniques, key=lambda t: order[t["name"]])
        by_name = {t["name"]: t for t in self.techniques}   # load_spec refuses two settings of a parent
        out = []
        for (m, budget) in self.models:
            for (d, given, _) in self.datasets:
                for seed in self.seeds:
                    for t in techs:
                        parent = techniques.get(t["name"]).parent
                        pconf = None
                        if parent is not None:
                            pconf = by_name.get(parent) or _technique("parent", parent)
                            pconf = {"name": pconf["name"], "params": pconf["params"]}
                        cfg = {"sweep": self.name, "model": m, "dataset": d, "budget": budget, "seed": seed,
                               "technique": t, "parent": pconf, "calibration": self.calibration,
                               "threads": self.threads, "latency": self.latency, "version": __version__}
                        out.append(Cell(copy.deepcopy(cfg), {d["name"]: given} if given else {}))
        return out


def load_spec(spec, threads: int | None = None) -> Spec:
    """A Spec from a TOML path or a dict; SpecError names the bad field. threads: overrides the
    spec's threads per cell."""
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"spec: no file at {path!r}")
        try:
            import tomllib
        except ImportError:  # Python < 3.11: the same parser, from PyPI (a dependency there)
            import tomli as tomllib
        with open(path, "rb") as f:
            try:
                spec = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise SpecError(f"spec {path!r}: not valid TOML: {e}") from None
    _keys("spec", spec, _TOP)
    for k in ("models", "datasets", "techniques"):
        if not isinstance(spec.get(k), (list, tuple)) or not spec.get(k):
            raise SpecError(f"spec.{k}: expected a non-empty list, got {spec.get(k)!r}")
    name = _type("spec.name", spec.get("name", "sweep"), str, "a string")
    budget = _budget("spec.budget", spec.get("budget", {}), DEFAULT_BUDGET)
    models = [_model(f"spec.models[{i}]", m, budget) for i, m in enumerate(spec["models"])]
    datasets = [_dataset(f"spec.datasets[{i}]", d) for i, d in enumerate(spec["datasets"])]
    techs = [_technique(f"spec.techniques[{i}]", t) for i, t in enumerate(spec["techniques"])]
    for what, labels in (("models", [m["label"] for m, _ in models]), ("datasets", [d["name"] for d, _, _ in datasets]),
                         ("techniques", [t["label"] for t in techs])):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise SpecError(f"spec.{what}: {', '.join(dup)} listed twice (give each setting its own 'label')")
    for i, (m, _) in enumerate(models):
        for d, _, facts in datasets:
            if m["in_channels"] is not None and m["in_channels"] != facts["channels"]:
                raise SpecError(f"spec.models[{i}].in_channels: {m['in_channels']}, but {d['name']} images have "
                                f"{facts['channels']} channel(s)")
            if m["num_classes"] is not None and m["num_classes"] < facts["classes"]:
                raise SpecError(f"spec.models[{i}].num_classes: {m['num_classes']}, but {d['name']} has labels up to "
                                f"{facts['classes'] - 1}")
    parents = {techniques.get(t["name"]).parent for t in techs} - {None}
    for p in sorted(parents):
        settings = [t["label"] for t in techs if t["name"] == p]
        if len(settings) > 1:
            raise SpecError(f"spec.techniques: {', '.join(settings)} are settings of {p}, which "
                            f"{', '.join(t['label'] for t in techs if techniques.get(t['name']).parent == p)} "
                            f"starts from; keep one {p} setting per spec")
    seeds = spec.get("seeds", [0])
    _type("spec.seeds", seeds, (list, tuple), "a list of integers")
    seeds = [_number(f"spec.seeds[{i}]", s, 0, integer=True) for i, s in enumerate(seeds)]
    if not seeds:
        raise SpecError("spec.seeds: expected at least one seed")
    calibration = _number("spec.calibration", spec.get("calibration", 200), 1, integer=True)
    n_threads = _number("spec.threads", spec.get("threads", _core.runtime.get_num_threads()), 1, integer=True)
    if threads is not None:
        n_threads = threads
    if n_threads > 1024:
        raise SpecError(f"spec.threads: expected at most 1024, got {n_threads}")
    lat = spec.get("latency", {})
    _keys("spec.latency", lat, DEFAULT_LATENCY)
    latency = {k: _number(f"spec.latency.{k}", lat.get(k, v), 1 if k == "runs" else 0, integer=True)
               for k, v in DEFAULT_LATENCY.items()}
    return Spec(name, models, datasets, techs, seeds, calibration, n_threads, latency)

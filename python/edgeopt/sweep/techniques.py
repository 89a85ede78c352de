"""The technique registry: every compression setup a sweep can run, in one table.

A technique is a named pipeline step ``step(model, data, params) -> (model, deploy)``:

- ``model``: a trained model to start from, the technique's own copy (the fp32 baseline, or the
  output of its ``parent`` technique, e.g. PRQ starts from PRN's pruned model);
- ``data``: a ``StepData`` (train / held-out validation / test / calibration sets, the training
  budget, the seed, the input shape, a ``stage(text)`` callback for the progress bar);
- ``params``: the technique's parameters, its defaults overridden by the spec;
- ``deploy``: the keyword arguments of ``deploy.compile`` (``scheme`` and, for int8-full, the
  ``calib`` / ``observer`` it needs). A technique that is a parent keeps its output as a shared
  stage, so its ``deploy`` must be JSON-able (it is stored with the stage).

Register a technique once with ``register``; the sweep spec names it, the runner calls it, the
report orders its rows by registration order. Names follow the study (NQ, BLQ, FIQ, F16, QAT, PRN,
PRQ, ...); the pruning, clustering, distillation and NAS issues add theirs the same way.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

from .. import prune, quant, train

__all__ = ["Technique", "StepData", "register", "get", "names", "TECHNIQUES"]


@dataclasses.dataclass(frozen=True)
class Technique:
    name: str
    step: Callable
    defaults: dict
    description: str
    parent: str | None = None      # a technique whose output model this one starts from
    cached: bool = False           # its output model is a shared stage (a parent of others)
    choices: dict = dataclasses.field(default_factory=dict)   # param -> allowed values
    ranges: dict = dataclasses.field(default_factory=dict)    # param -> (lowest, highest) allowed
    check: Callable | None = None  # params -> raises ValueError on a combination no cell can run


@dataclasses.dataclass
class StepData:
    train: object                  # Dataset: the training subset the budget allows
    val: object                    # Dataset: held-out images for choices a technique makes
    test: object                   # Dataset: the test set the Engine is measured on (not for choices)
    calib: object                  # Dataset: calibration images (from train)
    budget: dict                   # epochs, batch_size, lr, ... (spec.py)
    seed: int
    input_shape: tuple             # (1, C, H, W)
    stage: Callable = lambda text: None


TECHNIQUES: dict = {}


def register(name: str, step: Callable, defaults: dict | None = None, description: str = "",
             parent: str | None = None, cached: bool = False, choices: dict | None = None,
             ranges: dict | None = None, check: Callable | None = None) -> Technique:
    """Add a technique (a name registered twice is an error: one row per name). check(params), if
    given, runs when a spec is loaded, so a combination no cell can run fails before any training."""
    if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"name: expected a short identifier, got {name!r}")
    if name in TECHNIQUES:
        raise ValueError(f"technique {name!r} is already registered")
    if parent is not None and (parent not in TECHNIQUES or TECHNIQUES[parent].parent is not None):
        raise ValueError(f"parent: {parent!r} is not a registered technique without a parent of its own")
    t = Technique(name, step, dict(defaults or {}), description, parent, cached, dict(choices or {}),
                  dict(ranges or {}), check)
    TECHNIQUES[name] = t
    if parent is not None and not TECHNIQUES[parent].cached:
        TECHNIQUES[parent] = dataclasses.replace(TECHNIQUES[parent], cached=True)
    return t


def get(name: str) -> Technique:
    try:
        return TECHNIQUES[name]
    except KeyError:
        raise ValueError(f"unknown technique {name!r}; registered: {', '.join(TECHNIQUES)}") from None


def names() -> list:
    """Registered technique names, in registration order (the report's row order)."""
    return list(TECHNIQUES)


# ---------------------------------------------------------------------------------- helpers
def _fine_tune(model, data: StepData, epochs: float, lr: float, callbacks=()) -> None:
    """Train `model` for `epochs` (fractions allowed: that share of the training set) at `lr`."""
    if epochs <= 0:
        return
    whole, part = int(math.floor(epochs)), epochs - math.floor(epochs)
    b = data.budget
    kw = dict(batch_size=b["batch_size"], lr=lr, weight_decay=b["weight_decay"], seed=data.seed,
              progress=False, callbacks=callbacks)
    if whole:
        train.fit(model, data.train, epochs=whole, **kw)
    if part > 0:
        n = max(b["batch_size"], int(round(part * len(data.train))))
        train.fit(model, data.train.subset(range(min(n, len(data.train)))), epochs=1, **kw)


def _steps(data: StepData, epochs: float) -> int:
    per_epoch = -(-len(data.train) // data.budget["batch_size"])
    return max(1, int(round(epochs * per_epoch)))


# ---------------------------------------------------------------------------------- the study's rows
def _nq(model, data, p):
    return model, {"scheme": "fp32", "sparse": False}


def _rounded(scheme: str, p: dict, data: StepData) -> dict:
    """Deploy kwargs of a post-training weight scheme: GPTQ rounding takes the calibration images."""
    if p["rounding"] == "nearest":
        return {"scheme": scheme}
    data.stage("GPTQ weight rounding")
    return {"scheme": scheme, "calib": data.calib, "rounding": p["rounding"]}


def _rounding(p: dict):
    """A calibrated row's rounding: 'default' leaves it to deploy.compile (gptq with observer='auto')."""
    return None if p["rounding"] == "default" else p["rounding"]


def _blq(model, data, p):
    return model, _rounded("int8-weight", p, data)


def _fiq(model, data, p):
    data.stage(f"calibrating ({p['observer']})")
    return model, {"scheme": "int8-full", "calib": data.calib, "observer": p["observer"], "rounding": _rounding(p)}


def _f16(model, data, p):
    return model, {"scheme": "fp16"}


def _qat(model, data, p):
    """Fake-quantize where int8-full quantizes, fine-tune, freeze BN then observers late (freezing
    early at a high lr is unstable), deploy with the learned scales."""
    data.stage("quantization-aware fine-tuning")
    quant.prepare_qat(model, input_shape=data.input_shape)
    steps = _steps(data, p["epochs"])
    cbs = [quant.FreezeBatchNorm(int(p["freeze_bn"] * steps)), quant.FreezeObservers(int(p["freeze_observers"] * steps))]
    _fine_tune(model, data, p["epochs"], p["lr"], cbs)
    return quant.convert(model), {"scheme": "int8-full"}


def _check_qat_rounding(p: dict) -> None:
    """A row that trains with quantization (qat_epochs > 0) keeps nearest rounding: its weights
    learn that grid."""
    if p["qat_epochs"] > 0 and p.get("rounding") == "gptq":
        raise ValueError("rounding: 'gptq' is for post-training rows; with qat_epochs > 0 the weights are "
                         "trained for nearest rounding")


BINARY_ACTIVATIONS = {"float": False, "own": True, "all": "all"}   # BIN's activations -> prepare_qat's


def _check_low_bit(p: dict) -> None:
    _check_qat_rounding(p)
    if BINARY_ACTIVATIONS[p.get("activations", "float")] and p["qat_epochs"] <= 0:
        raise ValueError(f"activations: {p['activations']!r} binarizes activations during training: "
                         "it needs qat_epochs > 0")


def _low_bit(bits: int, scheme: str):
    """Post-training, or weight QAT for qat_epochs; BIN's activations other than 'float' binarize
    activations too (prepare_qat's binary_activations), which only training can set up."""
    def step(model, data, p):
        _check_low_bit(p)
        acts = BINARY_ACTIVATIONS[p.get("activations", "float")]
        if p["qat_epochs"] > 0:
            data.stage(f"{bits}-bit weight QAT" + (f", {p['activations']} activations binary" if acts else ""))
            quant.prepare_qat(model, input_shape=data.input_shape, weight_bits=bits, activations=False,
                              binary_activations=acts)
            _fine_tune(model, data, p["qat_epochs"], p["lr"])
            return quant.convert(model), {"scheme": scheme}
        return model, (_rounded(scheme, p, data) if "rounding" in p else {"scheme": scheme})
    return step


def _w4a8(model, data, p):
    """int4-full: 4-bit weights, 8-bit activations on the integer kernels; calibrated, or after
    quantization-aware fine-tuning (qat_epochs > 0) with its learned scales."""
    _check_qat_rounding(p)
    if p["qat_epochs"] <= 0:
        data.stage(f"calibrating ({p['observer']})")
        return model, {"scheme": "int4-full", "calib": data.calib, "observer": p["observer"], "rounding": _rounding(p)}
    data.stage("4-bit quantization-aware fine-tuning")
    quant.prepare_qat(model, input_shape=data.input_shape, weight_bits=4)
    steps = _steps(data, p["qat_epochs"])
    _fine_tune(model, data, p["qat_epochs"], p["lr"],
               [quant.FreezeBatchNorm(int(0.8 * steps)), quant.FreezeObservers(int(0.9 * steps))])
    return quant.convert(model), {"scheme": "int4-full"}


def _mix(model, data, p):
    data.stage(f"mixed precision search (size {p['size']:.0%})")
    plan = quant.mixed_precision(model, data.calib, data.val.subset(range(min(p["val_images"], len(data.val)))),
                                 budget={"size": p["size"]}, input_shape=data.input_shape)
    return model, {"scheme": plan}


def _prn(model, data, p):
    """The survey's Algorithm 2: prune by |w| in `steps` rounds up to `sparsity` (cubic schedule:
    big cuts first), fine-tuning after each round with the masks held. scope "global" (the
    default): one threshold for the network, so layers of small weights lose more (at 80 % it can
    empty one: mobilenet_v2's last 1x1 conv loses 99.8 %); "layer": every layer the same
    sparsity, as TF-MOT's prune_low_magnitude (which the study used)."""
    s_final, n = p["sparsity"], p["steps"]
    for i in range(1, n + 1):
        s = s_final * (1.0 - (1.0 - i / n) ** 3)
        data.stage(f"pruning {i}/{n} to {s:.0%}, fine-tuning")
        model = prune.magnitude(model, sparsity=s, scope=p["scope"])
        _fine_tune(model, data, p["finetune_epochs"], p["lr"])
    return prune.remove(model), {"scheme": "fp32", "sparse": "auto"}


def _prq(model, data, p):
    return model, {"scheme": p["scheme"], **({"calib": data.calib} if p["scheme"] == "int8-full" else {})}


register("NQ", _nq, description="no compression: the fp32 baseline deployed as it is")
register("BLQ", _blq, {"rounding": "nearest"}, "post-training int8 weights, float compute (int8-weight)",
         choices={"rounding": quant.ROUNDINGS})
register("FIQ", _fiq, {"observer": "minmax", "rounding": "default"},
         "post-training full-integer int8 from calibration images (int8-full)",
         choices={"observer": quant.OBSERVER_CHOICES, "rounding": ("default",) + quant.ROUNDINGS})
register("F16", _f16, description="fp16 weights (fp16)")
register("QAT", _qat, {"epochs": 1.0, "lr": 0.005, "freeze_bn": 0.8, "freeze_observers": 0.9},
         "quantization-aware fine-tuning, deployed int8-full with the learned scales",
         ranges={"epochs": (1e-3, 1e3), "freeze_bn": (0.0, 1.0), "freeze_observers": (0.0, 1.0)})
register("INT4", _low_bit(4, "int4-weight"), {"qat_epochs": 0.0, "lr": 0.005, "rounding": "nearest"},
         "4-bit weights (int4-weight), post-training (rounding: nearest or gptq) or with weight QAT",
         choices={"rounding": quant.ROUNDINGS}, check=_check_low_bit)
register("W4A8", _w4a8, {"observer": "minmax", "qat_epochs": 0.0, "lr": 0.005, "rounding": "default"},
         "4-bit weights, int8 activations on the integer kernels (int4-full), calibrated or after QAT",
         choices={"observer": quant.OBSERVER_CHOICES, "rounding": ("default",) + quant.ROUNDINGS},
         ranges={"qat_epochs": (0.0, 1e3)}, check=_check_qat_rounding)
register("BIN", _low_bit(1, "binary"), {"qat_epochs": 1.0, "lr": 0.005, "activations": "float"},
         "binary weights (alpha = mean|w| per channel; first and last layers 8-bit) after QAT; activations "
         "'float', or binary into the convs that read their own activation ('own') or into every "
         "binarized conv, with learned thresholds ('all'): those run as XNOR-popcount convs",
         choices={"activations": tuple(BINARY_ACTIVATIONS)}, check=_check_low_bit)
register("MIX", _mix, {"size": 0.18, "val_images": 1000},
         "mixed 8/4/2-bit weights from measured sensitivity, to a file-size budget",
         ranges={"size": (0.01, 1.0), "val_images": (1, 10**7)})
register("PRN", _prn, {"sparsity": 0.8, "steps": 2, "finetune_epochs": 0.5, "lr": 0.01, "scope": "global"},
         "magnitude pruning, iterative prune -> fine-tune (Algorithm 2)", choices={"scope": ("global", "layer")},
         ranges={"sparsity": (0.0, 0.999), "steps": (1, 1000)})
register("PRQ", _prq, {"scheme": "int8-weight"}, "PRN, then int8 weights (the study's PRN + BLQ)",
         parent="PRN", choices={"scheme": ("int8-weight", "int8-full", "fp16")})

BUILTIN = frozenset(TECHNIQUES)   # what every worker process knows after import

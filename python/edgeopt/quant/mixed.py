"""Mixed precision: a bit-width per conv / linear layer, chosen from measurements to meet a budget.

    plan = quant.mixed_precision(model, calib, val, budget={"size": 0.18})   # 18 % of the fp32 file
    print(plan)                                    # the per-layer table
    engine = deploy.compile(model, scheme=plan)

Weights of each layer are stored at 8, 4 or 2 bits (the int8-weight / int4-weight / int2-weight
forms, per output channel, f32 compute). What drives the choice is measured, never a proxy:

  sensitivity  the Engine's accuracy on ``val`` when that layer alone is lowered to 4 or 2 bits
               (the others at 8), in points against the all-8-bit Engine;
  latency      each layer's time in the runtime's per-op profile at batch 1 on this CPU, for each
               bit-width (from the uniform 8-, 4- and 2-bit Engines);
  size         the bytes of the saved file.

The plan starts with every layer at 8 bits and lowers, one step at a time (8 -> 4 -> 2), the
layer whose step buys the most of what the budget asks for (bytes, or milliseconds) per point of
sensitivity, until the compiled Engine meets every budget. A budget no plan can meet (not even
every layer at 2 bits) is a ValueError that says what the closest plan reaches.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .._check import check_float, check_int, check_shape
from ..data.dataset import Dataset
from ..graph import fuse, trace
from ..nn.module import check_module
from . import hooks

__all__ = ["MixedPrecisionPlan", "mixed_precision", "WEIGHT_SCHEMES"]

WEIGHT_SCHEMES = {8: "int8-weight", 4: "int4-weight", 2: "int2-weight"}
BUDGET_KEYS = ("size", "size_bytes", "latency_ms")


@dataclasses.dataclass
class MixedPrecisionPlan:
    """Bits per layer (fused graph node names, as in ``engine.summary()``) and the measurements
    behind them. ``deploy.compile(model, scheme=plan)`` deploys it."""
    bits: dict
    rows: list                 # per layer: name, params, bits, drop {4, 2}, latency_ms {8, 4, 2}
    budget: dict
    size_bytes: int            # the plan's saved file
    fp32_size_bytes: int
    latency_ms: float          # the plan's Engine, batch 1
    accuracy: float            # the plan's Engine on val
    baseline_accuracy: float   # every layer at 8 bits

    @classmethod
    def of(cls, bits: dict) -> "MixedPrecisionPlan":
        """A plan of just these bit-widths (no measurements), e.g. to compile a hand-made choice."""
        return cls(dict(bits), [], {}, 0, 0, 0.0, 0.0, 0.0)

    def schemes(self) -> dict:
        """{layer: deploy weight scheme}."""
        return {k: WEIGHT_SCHEMES[b] for k, b in self.bits.items()}

    def __str__(self) -> str:
        w = max(len(r["layer"]) for r in self.rows)
        lines = [f"  {'layer':<{w}} {'params':>9} {'bits':>4} {'drop@4 pt':>10} {'drop@2 pt':>10} "
                 f"{'ms@8':>7} {'ms@4':>7} {'ms@2':>7}"]
        for r in self.rows:
            lat = r["latency_ms"]
            lines.append(f"  {r['layer']:<{w}} {r['params']:>9,} {r['bits']:>4} {r['drop'][4]:>10.2f} "
                         f"{r['drop'][2]:>10.2f} {lat[8]:>7.4f} {lat[4]:>7.4f} {lat[2]:>7.4f}")
        counts = {b: sum(1 for v in self.bits.values() if v == b) for b in (8, 4, 2)}
        lines.append(f"budget {self.budget}: file {self.size_bytes:,} B = {100 * self.size_bytes / self.fp32_size_bytes:.1f} % "
                     f"of fp32, batch-1 {self.latency_ms:.3f} ms; layers at 8/4/2 bits: "
                     f"{counts[8]}/{counts[4]}/{counts[2]}; val accuracy {100 * self.accuracy:.2f} % "
                     f"(all 8-bit: {100 * self.baseline_accuracy:.2f} %)")
        return "\n".join(lines)

    __repr__ = __str__


def _check_budget(budget) -> dict:
    if not isinstance(budget, dict) or not budget:
        raise ValueError(f"budget: expected a dict with any of {BUDGET_KEYS}, e.g. {{'size': 0.18}}, got {budget!r}")
    out = {}
    for k, v in budget.items():
        if k not in BUDGET_KEYS:
            raise ValueError(f"budget: unknown key {k!r}; expected any of {BUDGET_KEYS}")
        if k == "size":
            out[k] = check_float("budget['size']", v, 0.0, 1.0, min_open=True)
        elif k == "size_bytes":
            out[k] = check_int("budget['size_bytes']", v, 1)
        else:
            out[k] = check_float("budget['latency_ms']", v, 0.0, min_open=True)
    return out


def mixed_precision(model, calib, val, budget: dict, input_shape=(1, 3, 32, 32), val_samples: int = 2000,
                    progress: bool = False) -> MixedPrecisionPlan:
    """The per-layer bit-widths from {8, 4, 2} that meet ``budget`` ({'size': fraction of the
    fp32 file} and / or {'size_bytes': n} and / or {'latency_ms': batch-1 ms}) losing the least
    measured accuracy (module docstring). ``val``: a labelled Dataset (its first ``val_samples``
    images measure sensitivity); ``calib``: inputs for the latency profile (a Dataset or an array
    of model inputs)."""
    from ..train.evaluate import evaluate
    check_module("model", model)
    input_shape = check_shape("input_shape", input_shape, 4)
    budget = _check_budget(budget)
    if not isinstance(val, Dataset) or len(val) == 0:
        raise ValueError("val: expected a non-empty labelled Dataset (sensitivity is an accuracy change)")
    val = val.subset(np.arange(min(len(val), check_int("val_samples", val_samples, 1))))
    x1 = _profile_input(model, calib, input_shape)
    layers = [n.name for n in fuse(trace(model, input_shape)).nodes if n.op in ("conv2d", "linear")]
    params = {n.name: int(np.prod(n.params["weight"].shape))
              for n in fuse(trace(model, input_shape)).nodes if n.op in ("conv2d", "linear")}

    def engine(bits: dict):
        return hooks.compile(model, scheme=MixedPrecisionPlan.of(bits), input_shape=input_shape)

    def acc(e) -> float:
        return float(evaluate(e, val)["acc"])

    fp32_size = hooks.compile(model, "fp32", input_shape=input_shape).size_bytes
    uniform = {b: engine({k: b for k in layers}) for b in (8, 4, 2)}
    base = acc(uniform[8])
    # latency of every layer at every width, from each uniform Engine's per-op profile
    latency = {k: {} for k in layers}
    for b, e in uniform.items():
        for r in e.profile(x1, runs=50, warmup=0):
            if r["name"] in latency:
                latency[r["name"]][b] = float(r["ms"])
    drop = {}
    steps = [(k, b) for k in layers for b in (4, 2)]
    bar = _bar(progress, len(steps))
    for k, b in steps:
        bits = {j: 8 for j in layers}
        bits[k] = b
        drop.setdefault(k, {})[b] = 100 * (base - acc(engine(bits)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    def gaps(e) -> dict:
        """How far the Engine is from each budget (positive: over)."""
        g = {}
        if "size" in budget:
            g["bytes"] = e.size_bytes - budget["size"] * fp32_size
        if "size_bytes" in budget:
            g["bytes"] = max(g.get("bytes", -np.inf), e.size_bytes - budget["size_bytes"])
        if "latency_ms" in budget:
            g["ms"] = _latency_ms(e) - budget["latency_ms"]
        return g

    bits = {k: 8 for k in layers}
    e = uniform[8]
    while True:
        g = gaps(e)
        if all(v <= 0 for v in g.values()):
            break
        # the step that closes the largest share of the remaining gaps per point of sensitivity
        best, best_score = None, -np.inf
        for k in layers:
            b = bits[k]
            if b == 2:
                continue
            nb = 4 if b == 8 else 2
            cost = max(drop[k][nb] - (drop[k][b] if b != 8 else 0.0), 0.0) + 0.01
            gain = 0.0
            if g.get("bytes", 0) > 0:
                gain += params[k] * (b - nb) / 8 / g["bytes"]
            if g.get("ms", 0) > 0:
                gain += max(latency[k][b] - latency[k][nb], 0.0) / g["ms"]
            if gain / cost > best_score:
                best, best_score = (k, nb), gain / cost
        if best is None:
            e2 = uniform[2]
            raise ValueError(f"budget: no plan meets {budget}: with every layer at 2 bits the file is "
                             f"{e2.size_bytes:,} B ({100 * e2.size_bytes / fp32_size:.1f} % of fp32) and batch-1 "
                             f"latency {_latency_ms(e2):.3f} ms")
        bits[best[0]] = best[1]
        e = engine(bits)
    rows = [{"layer": k, "params": params[k], "bits": bits[k], "drop": drop[k], "latency_ms": latency[k]}
            for k in layers]
    return MixedPrecisionPlan(bits, rows, budget, e.size_bytes, fp32_size, _latency_ms(e), acc(e), base)


def _latency_ms(e) -> float:
    return float(hooks.latency(e, batch=1, runs=50)["median_ms"])


def _profile_input(model, calib, input_shape) -> np.ndarray:
    """One model input for the per-op profile: the first calib sample, preprocessed as evaluate
    does (a Dataset) or taken as it is (an array of inputs)."""
    from .calibrate import calibration_batches
    x = next(iter(calibration_batches(model, calib, 1, batch_size=1, what="mixed_precision",
                                      input_shape=input_shape)))
    return np.ascontiguousarray(x[:1], dtype=np.float32)


def _bar(enabled: bool, total: int):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but a progress bar is not worth failing for
        return None
    return tqdm(total=total, desc="mixed precision: layer sensitivity", leave=False, unit="engine")

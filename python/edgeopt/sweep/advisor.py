"""The study's AIoT strategy advisor (its Section 4.3), computed from measured rows.

The study sorts on-device services into three tiers and recommends a technique for each (low-end:
PRQ, mid-end: PRN, high-end: F16 or PRN). Here each tier is a rule over the measurements, so the
answer follows the numbers, not the paper:

- low-end (small memory, not delay-sensitive): the smallest file whose accuracy is at most
  ``low`` points below the uncompressed NQ;
- mid-end (embedded, real time): within ``mid`` points, the best size and latency together, the
  smallest geometric mean of size / NQ size and test-set time / NQ time;
- high-end (accuracy and real time): within ``high`` points, the shortest test-set time.

Per (model, dataset) the reference is that model's NQ row; "overall" per dataset it is the most
accurate NQ row of any model there, and every model's rows compete.
"""
from __future__ import annotations

import dataclasses
import math

__all__ = ["DEFAULT_THRESHOLDS", "TIERS", "RULES", "Pick", "check_thresholds", "advise"]

DEFAULT_THRESHOLDS = {"low": 1.0, "mid": 0.5, "high": 0.2}  # accuracy drop vs NQ allowed, points
TIERS = {"low": "low-end", "mid": "mid-end", "high": "high-end"}
RULES = {"low": "the smallest file", "mid": "the smallest geometric mean of size/NQ and test time/NQ",
         "high": "the shortest test-set time"}


@dataclasses.dataclass(frozen=True)
class Pick:
    tier: str             # low / mid / high
    scope: str            # "model" (against the model's own NQ) or "overall" (all models of a dataset)
    model: str
    dataset: str
    technique: str
    acc: float
    drop: float           # accuracy points below the reference NQ (negative: above it)
    size_bytes: float
    test_time_ms: float
    score: float          # what the tier minimised (bytes, the geometric mean, or ms)
    candidates: int       # rows within the tier's accuracy drop
    why: str


def check_thresholds(thresholds) -> dict:
    """The defaults updated by `thresholds` ({tier: max accuracy drop in points})."""
    out = dict(DEFAULT_THRESHOLDS)
    if thresholds is None:
        return out
    if not isinstance(thresholds, dict):
        raise TypeError(f"advisor_thresholds: expected a dict like {DEFAULT_THRESHOLDS}, "
                        f"got {type(thresholds).__name__}")
    for k, v in thresholds.items():
        if k not in out:
            raise ValueError(f"advisor_thresholds: unknown tier {k!r}; tiers: {', '.join(out)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"advisor_thresholds[{k!r}]: expected a finite number of points >= 0, got {v!r}")
        out[k] = float(v)
    return out


def _usable(r) -> bool:
    return all(r.get(k) is not None for k in ("acc", "size_bytes", "test_time_ms"))


def _pick(tier: str, scope: str, ref: dict, rows: list, limit: float) -> Pick:
    within = [r for r in rows if r["acc"] >= ref["acc"] - limit]

    def score(r):
        if tier == "low":
            return r["size_bytes"]
        if tier == "mid":
            return math.sqrt(r["size_bytes"] / ref["size_bytes"] * r["test_time_ms"] / ref["test_time_ms"])
        return r["test_time_ms"]
    best = min(within, key=lambda r: (score(r), -r["acc"], r["model"], r["technique"]))
    size_x, time_x = best["size_bytes"] / ref["size_bytes"], best["test_time_ms"] / ref["test_time_ms"]
    what = {"low": f"smallest file: {best['size_bytes'] / 1e3:,.1f} KB",
            "mid": f"smallest sqrt(size/NQ x time/NQ) = {score(best):.3f}",
            "high": f"shortest test-set time: {best['test_time_ms']:,.1f} ms"}[tier]
    ref_name = f"NQ of {ref['model']}" if scope == "overall" else "NQ"
    why = (f"{what} among the {len(within)} rows within {limit:g} pt of {ref_name} ({ref['acc']:.2f} %); "
           f"size {size_x:.2f}x, test time {time_x:.2f}x, accuracy {best['acc'] - ref['acc']:+.2f} pt vs {ref_name}")
    return Pick(tier, scope, best["model"], best["dataset"], best["technique"], best["acc"],
                ref["acc"] - best["acc"], best["size_bytes"], best["test_time_ms"], score(best), len(within), why)


def advise(rows: list, thresholds: dict | None = None) -> list:
    """Picks for every tier: per (model, dataset) with an NQ row, then overall per dataset.

    `rows`: one dict per (model, dataset, technique) with ``acc`` (%), ``size_bytes`` and
    ``test_time_ms`` (seed means); rows missing any of them (failed cells) are left out."""
    limits = check_thresholds(thresholds)
    rows = [r for r in rows if _usable(r)]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    picks, refs = [], {}
    for (ds, model), group in sorted(groups.items()):
        ref = next((r for r in group if r["technique"] == "NQ"), None)
        if ref is None:
            continue
        if ds not in refs or ref["acc"] > refs[ds]["acc"]:
            refs[ds] = ref
        picks += [_pick(t, "model", ref, group, limits[t]) for t in limits]
    for ds, ref in sorted(refs.items()):
        group = [r for r in rows if r["dataset"] == ds]
        picks += [_pick(t, "overall", ref, group, limits[t]) for t in limits]
    return picks

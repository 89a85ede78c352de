"""The reference study's published figures and claims, as data, and its remarks checked on ours.

Lee, H.; Lee, N.; Lee, S. "A Method of Deep Learning Model Optimization for Image Classification on
Edge Device". Sensors 2022, 22, 7344 (https://doi.org/10.3390/s22197344). Its Tables 5-14 measure
TensorFlow-Lite models on CIFAR10 / CIFAR100: Acc (%), Size (KB = 1000 bytes: ResNet50's CIFAR100
row is 738 KB larger, the 90 extra classes' 2048 x 90 fp32 weights) and Lat (ms, the 10,000 test
images classified).

Entered: every row of Tables 5, 6, 8, 9, 10, 11 and 13, and the KD column of Table 14's four plain
MobileNet rows. Left out: Table 7 (ResNet101; its row labels are lost in the source text),
Table 12 (ImageNet top-1 / MAdds only), Table 14's "Original" column (it repeats Tables 8-11) and
its M1/M2-F16/PR KD rows (their size and latency repeat Table 13's WRN row, a copy slip). Figures
that look wrong are entered as printed, with a note (``NOTES``).
"""
from __future__ import annotations

import dataclasses
import math
import re

__all__ = ["CITATION", "TABLES", "ROWS", "NOTES", "REMARKS", "ADVICE", "StudyRow", "RemarkCheck",
           "family", "study_dataset", "lookup", "check_remarks"]

CITATION = ("Lee, H.; Lee, N.; Lee, S. A Method of Deep Learning Model Optimization for Image "
            "Classification on Edge Device. Sensors 2022, 22, 7344. https://doi.org/10.3390/s22197344")

TABLES = {5: "VGGNet", 6: "ResNet50", 8: "M1", 9: "M2", 10: "M3s", 11: "M3L", 13: "WRN", 14: "KD"}

# table model technique | CIFAR10 acc size_kb lat_ms | CIFAR100 acc size_kb lat_ms ("-": not given)
_RAW = """
5  VGGNet   NQ   71.9     56    4    43.5    425    18
5  VGGNet   BLQ  71.9     19   20    43.7    112    35
5  VGGNet   FIQ  72.5     18   44    43.5    110    53
5  VGGNet   F16  72.1     30    6    43.8    214    19
5  VGGNet   QAT  72.5     18   42    42.5    106    45
5  VGGNet   PRN  68.7     16    2    39.7    123     2
5  VGGNet   PRQ  68.6      7   19    39.7     37    19
6  ResNet50 NQ   80.7  94052  177    36.5  94790   129
6  ResNet50 BLQ  80.3  24161 2348    36.5  24346  2642
6  ResNet50 FIQ  80.4  24269 2078    37.2  24454  1997
6  ResNet50 F16  80.6  47072  152    39.4  47441   162
6  ResNet50 QAT  80.5  24281 2069    36.9  24431  2001
6  ResNet50 PRN  81.2  27503  155    43.2  27857   148
6  ResNet50 PRQ  81.2   8023 2399    43.1   8059  2379
8  M1       NQ   81.8  12840   18    42.2  13208  34.6
8  M1       BLQ  81.8   3477  346    42.2   3560 379.7
8  M1       FIQ  82.4   3517  332    43.1   3612   330
8  M1       F16  80.9   6435   22    45.1   6620  30.4
8  M1       PRQ  81.0   1319  350    46.1   1349   350
8  M1       PRN  81.0   3934   18    45.9   4063    19
9  M2       NQ   81.6   8924   11    45.7   9386  21.7
9  M2       BLQ  81.5   2663  224    45.5   2782 213.6
9  M2       FIQ  81.2   2730  173    45.9   2848   161
9  M2       F16  82.0   4509 10.6    41.5   4740  21.6
9  M2       PRQ  80.2   1082  213    47.2   1118   221
9  M2       PRN  80.5   2876    8    47.1   2997     7
10 M3s      NQ   68.8  12161   10    34.8  12624    24
10 M3s      BLQ  68.7   3269   73    34.9   3389    97
10 M3s      FIQ  69.7   3301   41    35.4   3419    43
10 M3s      F16  72.1   6128   10    35.2   6359    20
10 M3s      PRQ  69.6   1172   64    36.0   1187    69
10 M3s      PRN  69.7   3740    6    36.2   3862     7
11 M3L      NQ   77.9  34939   26    37.1  35401    37
11 M3L      BLQ  78.0   9122  195    37.2   9239   218
11 M3L      FIQ  77.2   9178  149    36.7   9295   150
11 M3L      F16  77.9  17525   26    38.1  17756    28
11 M3L      PRQ  75.7   3062  206    39.4   3122   211
11 M3L      PRN  75.6  10510   19    39.3  10653    29
13 WRN      NQ   88.8   1899   39    60.5    192    50
13 WRN      BLQ  88.8    537 1820    59.4    544  1860
13 WRN      FIQ  88.7    538 1913    59.3    544  2009
13 WRN      F16  86.7    982   39    60.0    994    51
13 WRN      QAT  88.6    540 1916    58.9    549  2002
13 WRN      PRN  87.6    547   42    60.2    572    37
13 WRN      PRQ  87.6    195 1902    60.3    200  1860
14 M1       KD   86.3  12840   18    -        -     -
14 M2       KD   85.4   8924   11    -        -     -
14 M3L      KD   60.5  34939   26    -        -     -
14 M3s      KD   60.5  12161   10    -        -     -
"""

NOTES = {
    (13, "WRN", "NQ", "CIFAR100"): "size printed as 192 KB, below its own BLQ (544 KB); likely 1920",
    (14, "M3L", "KD", "CIFAR10"): "the same 60.5 % as M3s and as WRN's CIFAR100 NQ row",
}

# The study's four remarks (Section 4.1), quoted.
REMARKS = {
    1: "If the quantization is applied, the model can be compressed while maintaining the similar accuracy.",
    2: "The data conversion procedure of the quantization can cause recognition delays.",
    3: "If pruning is applied, both the model size and the recognition delay can be reduced while "
       "maintaining a similar accuracy.",
    4: "The pruning shows a better performance improvement when applied to neural networks with a large capacity.",
}

# Section 4.3: the techniques it recommends per AIoT service tier.
ADVICE = {"low": ("PRQ",), "mid": ("PRN",), "high": ("F16", "PRN")}


@dataclasses.dataclass(frozen=True)
class StudyRow:
    table: int
    model: str          # the study's label: VGGNet, ResNet50, M1, M2, M3s, M3L, WRN
    technique: str
    dataset: str        # CIFAR10 or CIFAR100
    acc: float          # %
    size_kb: float      # KB (1000 bytes)
    lat_ms: float       # ms for the 10,000 test images


def _parse(raw: str) -> list:
    rows = []
    for line in raw.strip().splitlines():
        table, model, tech, *nums = line.split()
        for dataset, (acc, kb, ms) in zip(("CIFAR10", "CIFAR100"), (nums[0:3], nums[3:6])):
            if acc != "-":
                rows.append(StudyRow(int(table), model, tech, dataset, float(acc), float(kb), float(ms)))
    return rows


ROWS = _parse(_RAW)


def family(model: str) -> str | None:
    """The study's label for one of our zoo's names (vgg* -> VGGNet, wrn* -> WRN), or None."""
    m = model.strip().lower()
    if re.fullmatch(r"vgg\d+", m):
        return "VGGNet"
    if re.fullmatch(r"wrn\d+_\d+", m):
        return "WRN"
    return {"resnet50": "ResNet50", "mobilenet_v1": "M1", "mobilenet_v2": "M2",
            "mobilenet_v3_large": "M3L", "mobilenet_v3_small": "M3s"}.get(m)


def study_dataset(dataset: str) -> str | None:
    return {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}.get(dataset.strip().lower())


def lookup(model: str, dataset: str, technique: str) -> StudyRow | None:
    """The study's row for our (model, dataset, technique), or None when it has none."""
    fam, ds = family(model), study_dataset(dataset)
    for r in ROWS:
        if (r.model, r.dataset, r.technique) == (fam, ds, technique):
            return r
    return None


# --------------------------------------------------------------------------- the remarks, checked
@dataclasses.dataclass
class RemarkCheck:
    number: int
    claim: str
    verdict: str        # "holds", "partly holds", "does not hold", "not testable"
    evidence: list      # lines of measured evidence


_QUANT = ("BLQ", "FIQ", "F16", "QAT")      # the study's quantization setups
_INT8 = ("BLQ", "FIQ", "QAT")              # the ones whose slowness it blames on int8 conversion


def _verdict(passed: int, total: int) -> str:
    if total == 0:
        return "not testable"
    return "holds" if passed == total else "does not hold" if passed == 0 else "partly holds"


def _measured(r) -> bool:
    return all(r.get(k) is not None for k in ("acc", "size_bytes", "test_time_ms"))


def _pairs(rows: list, techniques) -> list:
    """(row, its NQ row) for each measured row of `techniques` whose model/dataset has a measured NQ."""
    nq = {(r["model"], r["dataset"]): r for r in rows if r["technique"] == "NQ" and _measured(r)}
    return [(r, nq[r["model"], r["dataset"]]) for r in rows
            if r["technique"] in techniques and _measured(r) and (r["model"], r["dataset"]) in nq]


def _where(r) -> str:
    return f"{r['technique']} {r['model']}/{r['dataset']}"


def _ranks(x) -> list:
    """Ranks from 0, ties sharing their average rank."""
    s = sorted(x)
    return [(s.index(v) + len(s) - 1 - s[::-1].index(v)) / 2 for v in x]


def _spearman(x, y) -> float:
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (sx * sy) if sx and sy else float("nan")


def check_remarks(rows: list, acc_tol: float = 1.0, lat_tol: float = 0.05) -> list:
    """Test Remarks 1-4 on aggregated rows (dicts with model, dataset, technique, acc, size_bytes,
    test_time_ms, params; one per model/dataset/technique). "Similar accuracy" means at most
    `acc_tol` points below NQ; a latency counts as longer / shorter only beyond `lat_tol` (relative),
    so timing noise decides nothing."""
    out = []

    pairs = _pairs(rows, _QUANT)
    bad = [f"{_where(r)}: size {r['size_bytes'] / n['size_bytes']:.2f}x NQ, accuracy {r['acc'] - n['acc']:+.2f} pt"
           for r, n in pairs if not (r["size_bytes"] < n["size_bytes"] and r["acc"] >= n["acc"] - acc_tol)]
    ev = [f"{len(pairs) - len(bad)} of {len(pairs)} quantized rows ({', '.join(_QUANT)}) are smaller than NQ "
          f"and within {acc_tol:g} pt of its accuracy"]
    if pairs:
        ratios = [r["size_bytes"] / n["size_bytes"] for r, n in pairs]
        ev.append(f"size / NQ from {min(ratios):.2f} to {max(ratios):.2f}; "
                  f"accuracy change from {min(r['acc'] - n['acc'] for r, n in pairs):+.2f} "
                  f"to {max(r['acc'] - n['acc'] for r, n in pairs):+.2f} pt")
    out.append(RemarkCheck(1, REMARKS[1], _verdict(len(pairs) - len(bad), len(pairs)), ev + bad))

    pairs = _pairs(rows, _INT8)
    slow = [(r, n) for r, n in pairs if r["test_time_ms"] > n["test_time_ms"] * (1 + lat_tol)]
    ev = [f"{len(slow)} of {len(pairs)} int8 rows ({', '.join(_INT8)}) take longer than NQ on the test set "
          f"(by more than {lat_tol:.0%})"]
    ev += [f"{_where(r)}: {r['test_time_ms']:.1f} ms vs NQ {n['test_time_ms']:.1f} ms "
           f"({r['test_time_ms'] / n['test_time_ms']:.2f}x)" for r, n in pairs]
    out.append(RemarkCheck(2, REMARKS[2], _verdict(len(slow), len(pairs)), ev))

    pairs = _pairs(rows, ("PRN",))
    good = [(r, n) for r, n in pairs if r["size_bytes"] < n["size_bytes"]
            and r["test_time_ms"] < n["test_time_ms"] * (1 - lat_tol) and r["acc"] >= n["acc"] - acc_tol]
    ev = [f"{len(good)} of {len(pairs)} PRN rows are smaller, faster (by more than {lat_tol:.0%}) and within "
          f"{acc_tol:g} pt of NQ"]
    ev += [f"{_where(r)}: size {r['size_bytes'] / n['size_bytes']:.2f}x, test time "
           f"{r['test_time_ms'] / n['test_time_ms']:.2f}x, accuracy {r['acc'] - n['acc']:+.2f} pt" for r, n in pairs]
    out.append(RemarkCheck(3, REMARKS[3], _verdict(len(good), len(pairs)), ev))

    # Remark 4: per dataset, does PRN's accuracy change vs NQ grow with the model's parameters?
    by_ds: dict = {}
    for r, n in _pairs(rows, ("PRN",)):
        if n.get("params") is not None:
            by_ds.setdefault(r["dataset"], []).append((n["params"], r["acc"] - n["acc"], r["model"]))
    ev, tested, agree = [], 0, 0
    for ds, pts in sorted(by_ds.items()):
        if len(pts) < 2:
            ev.append(f"{ds}: only one model with PRN and NQ, nothing to compare")
            continue
        pts.sort()
        rho = _spearman([p[0] for p in pts], [p[1] for p in pts])
        tested += 1
        agree += rho > 0
        ev.append(f"{ds}: rank correlation of parameters with PRN's accuracy change = {rho:+.2f} ("
                  + ", ".join(f"{m} {p / 1e6:.2f} M params: {d:+.2f} pt" for p, d, m in pts) + ")")
    out.append(RemarkCheck(4, REMARKS[4], _verdict(agree, tested), ev or ["no PRN rows with an NQ baseline"]))
    return out

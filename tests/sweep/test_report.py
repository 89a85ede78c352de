"""The sweep report reads back as the database: CSV values exactly, markdown tables as the seed
means; the Pareto front against brute force; the advisor follows the numbers; the study's figures
are sane. The database is made up here (plausible numbers): these tests check the report, not
measurements. ``make_db`` is also used by test_report_browser.py."""
import csv
import math
import pathlib
import re

import numpy as np
import pytest

from edgeopt.sweep import advisor, study, techniques
from edgeopt.sweep.db import METRICS, ResultsDB
from edgeopt.sweep.report import aggregate, pareto_front, report, tables_markdown

MODELS = {"vgg11": 9.2e6, "mobilenet_v2": 2.2e6, "resnet20": 0.27e6}  # params
DATASETS = {"cifar10": 90.0, "cifar100": 66.0}                          # NQ accuracy of the largest
# technique -> (size factor, test-time factor, accuracy change in points)
TECHS = {"NQ": (1.0, 1.0, 0.0), "BLQ": (0.26, 1.8, -0.1), "FIQ": (0.25, 0.6, -0.4), "F16": (0.5, 1.05, 0.0),
         "QAT": (0.25, 0.6, -0.1), "PRN": (0.3, 0.7, -0.6), "PRQ": (0.08, 1.7, -0.8), "ZZ_CUSTOM": (0.9, 0.9, -2.0)}
FAILED = ("mobilenet_v2", "cifar100", "FIQ", 0)
HALF_FAILED = ("vgg11", "cifar10", "QAT", 1)


def _cell(model, dataset, tech, seed, rng):
    params = MODELS[model]
    size_x, time_x, dacc = TECHS[tech]
    acc = DATASETS[dataset] - 3 * math.log10(9.2e6 / params) + dacc + rng.normal(0, 0.3)
    base_ms = params / 1e6 * 0.4
    return {"acc": round(acc, 2), "top5": min(100.0, acc + 8), "size_bytes": int(params * 4 * size_x) + 2048,
            "lat_median_ms": base_ms * time_x * rng.uniform(0.95, 1.05), "lat_p90_ms": base_ms * time_x * 1.2,
            "test_time_ms": base_ms * 2000 * time_x * rng.uniform(0.95, 1.05), "test_images": 10000,
            "macs": int(params * 30), "params": int(params), "nonzero_params": int(params * min(1.0, size_x * 3)),
            "peak_activation_bytes": 131072, "train_s": 120.0, "technique_s": 3.5, "deploy_s": 0.4}


def make_db(path, seed: int = 0) -> ResultsDB:
    """Three models x two datasets x the techniques, two seeds for vgg11/cifar10, one custom
    technique (ordered last), one cell whose only seed failed and one with one of two seeds failed."""
    rng = np.random.default_rng(seed)
    db = ResultsDB(path)
    env = {"cpu": "Made-up CPU @ 3.0GHz", "isa": "avx2", "threads": 4,
           "versions": {"edgeopt": "0.0.test", "numpy": np.__version__}, "git": "abc1234"}
    for model in MODELS:
        for dataset in DATASETS:
            for tech in TECHS:
                if tech == "ZZ_CUSTOM" and model != "resnet20":
                    continue
                for s in ((0, 1) if (model, dataset) == ("vgg11", "cifar10") else (0,)):
                    coords = {"sweep": "test", "model": model, "dataset": dataset, "technique": tech, "seed": s}
                    config = {"model": {"name": model, "width": 1.0}, "dataset": {"name": dataset},
                              "technique": {"name": tech, "params": {}}, "seed": s}
                    key = f"{model}-{dataset}-{tech}-{s}"
                    if (model, dataset, tech, s) in (FAILED, HALF_FAILED):
                        db.put_cell(key, coords, config, "failed", env=env, error=(
                            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                            f"RuntimeError: made-up failure of {key} | with a pipe\n"))
                    else:
                        db.put_cell(key, coords, config, "ok", metrics=_cell(model, dataset, tech, s, rng), env=env)
    return db


@pytest.fixture
def db(tmp_path):
    with make_db(tmp_path / "results.db") as d:
        yield d


def _parse_markdown_tables(text: str) -> dict:
    """{model: (columns, {technique: [cells]})} from the '### model' sections of the results."""
    out, model = {}, None
    for block in re.split(r"\n(?=### )", text):
        lines = block.strip().splitlines()
        if not lines[0].startswith("### "):
            continue
        model = lines[0][4:]
        rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines[1:] if ln.startswith("|")]
        out[model] = (rows[0], {r[0]: r[1:] for r in rows[2:]})
    return out


def _numbers(cell: str) -> list:
    return [float(t.replace(",", "")) for t in re.findall(r"-?[\d,]*\.?\d+", cell.split("(")[0])]


def test_csv_holds_the_databases_values(db, tmp_path):
    paths = report(db, format="csv", out=tmp_path / "r")
    assert set(paths) == {"csv"}
    with open(paths["csv"], newline="") as f:
        got = {r["key"]: r for r in csv.DictReader(f)}
    rows = db.cells()
    assert set(got) == {r["key"] for r in rows}
    for r in rows:
        g = got[r["key"]]
        assert [g[c] for c in ("sweep", "model", "dataset", "technique", "status")] == \
               [r[c] for c in ("sweep", "model", "dataset", "technique", "status")]
        assert int(g["seed"]) == r["seed"]
        for k in METRICS:
            assert (g[k] == "") if r[k] is None else (type(r[k])(g[k]) == r[k]), (r["key"], k)
        assert g["error_line"] == ("" if r["status"] == "ok" else r["error"].strip().splitlines()[-1])


def test_markdown_tables_are_the_seed_means(db):
    rows = db.cells()
    tables = _parse_markdown_tables(tables_markdown(rows))
    assert set(tables) == set(MODELS)
    cols = {"Acc (%)": ("acc", 1), "Size (KB)": ("size_bytes", 1000), "Lat (ms)": ("test_time_ms", 1),
            "Lat@1 (ms)": ("lat_median_ms", 1)}
    checked = 0
    for model, (header, body) in tables.items():
        # the registry's order, names it does not know after it
        known = [t for t in techniques.names() if t in body]
        assert list(body) == known + sorted(set(body) - set(known))
        for tech, cells in body.items():
            for head, cell in zip(header[1:], cells):
                dataset, col = head.split(" ", 1)
                metric, div = cols[col]
                group = [r for r in rows if (r["model"], r["dataset"], r["technique"]) == (model, dataset, tech)]
                ok = np.array([r[metric] for r in group if r["status"] == "ok"], float) / div
                n_failed = sum(r["status"] == "failed" for r in group)
                if not group:
                    assert cell == "-"
                    continue
                if ok.size == 0:
                    assert cell == "failed"
                    continue
                assert ("(1 failed)" in cell) == (n_failed == 1), cell
                nums = _numbers(cell)
                expect = [ok.mean()] + ([ok.std(ddof=1)] if ok.size > 1 else [])
                assert len(nums) == len(expect), cell
                # rounded to the decimals printed (the std to those of the mean)
                decimals = len(cell.split()[0].partition(".")[2])
                np.testing.assert_allclose(nums, expect, rtol=0, atol=0.5001 * 10.0 ** -decimals,
                                           err_msg=f"{model} {tech} {head}: {cell}")
                checked += 1
    assert checked > 100


def test_full_report_files(db, tmp_path):
    paths = report(db, format="all", out=tmp_path / "r")
    md = pathlib.Path(paths["md"]).read_text(encoding="utf-8")
    assert tables_markdown(db.cells()).strip() in md
    # two plots per dataset, as PNG and SVG
    assert len(paths["plots"]) == 2 * 2 * len(DATASETS)
    for p in paths["plots"]:
        head = pathlib.Path(p).read_bytes()[:200]
        assert head.startswith(b"\x89PNG") if p.endswith(".png") else b"<svg" in head or b"<?xml" in head
    # failed cells, with the line that says what went wrong (its pipe escaped)
    assert "RuntimeError: made-up failure of mobilenet_v2-cifar100-FIQ-0 \\| with a pipe" in md
    # the study beside ours, or "no match"
    assert re.search(r"\| vgg11 \| cifar10 \| PRN \| Table 5 VGGNet \|", md)
    assert "| resnet20 | cifar10 | NQ | no match (model not in the study) |" in md
    assert "| mobilenet_v2 | cifar10 | BLQ | Table 9 M2 |" in md
    # every remark gets a verdict; BLQ is made slower than NQ here, FIQ and QAT faster
    assert len(re.findall(r"^### Remark \d: (holds|partly holds|does not hold|not testable)$", md, re.M)) == 4
    assert "### Remark 2: partly holds" in md
    assert "Made-up CPU @ 3.0GHz" in md and "abc1234" in md


def _agg(**sizes):
    """Aggregated rows of one model/dataset: NQ plus techniques as (acc, size, time)."""
    rows = [{"model": "m", "dataset": "d", "technique": "NQ", "acc": 80.0, "size_bytes": 1000.0, "test_time_ms": 100.0}]
    rows += [{"model": "m", "dataset": "d", "technique": t, "acc": a, "size_bytes": s, "test_time_ms": ms}
             for t, (a, s, ms) in sizes.items()]
    return rows


def _picks(rows, **thresholds):
    return {(p.scope, p.tier): p.technique for p in advisor.advise(rows, thresholds or None)}


def test_advisor_follows_the_numbers():
    rows = _agg(BLQ=(79.5, 260.0, 180.0), F16=(80.0, 500.0, 95.0), PRN=(79.7, 300.0, 60.0), PRQ=(78.5, 90.0, 170.0))
    picks = _picks(rows)
    assert picks[("model", "low")] == "BLQ"     # PRQ is smaller but 1.5 pt down
    assert picks[("model", "mid")] == "PRN"     # sqrt(0.3 * 0.6) is the smallest
    assert picks[("model", "high")] == "F16"    # PRN is faster but 0.3 pt down
    assert picks[("overall", "low")] == "BLQ"
    # the measured numbers move, the picks move
    assert _picks(_agg(BLQ=(79.5, 260.0, 180.0), F16=(80.0, 200.0, 95.0)))[("model", "low")] == "F16"
    assert _picks(rows, low=2.0)[("model", "low")] == "PRQ"
    assert _picks(rows, high=0.5)[("model", "high")] == "PRN"
    assert _picks(_agg(PRN=(79.0, 300.0, 60.0)))[("model", "mid")] == "NQ"


def test_advisor_in_the_report_moves_with_the_database(db, tmp_path):
    def low_end_pick():
        md = pathlib.Path(report(db, format="md", out=tmp_path / "r")["md"]).read_text(encoding="utf-8")
        row = re.search(r"^\| cifar10 \| low-end \| vgg11 \| (\w+) \|", md, re.M)
        return row.group(1)

    assert low_end_pick() != "F16"  # half the size of NQ: never the smallest here
    for key in ("vgg11-cifar10-F16-0", "vgg11-cifar10-F16-1"):
        [cell] = [r for r in db.cells() if r["key"] == key]
        metrics = {k: cell[k] for k in METRICS}
        metrics["size_bytes"] = 1000
        db.put_cell(key, {k: cell[k] for k in ("sweep", "model", "dataset", "technique", "seed")},
                    cell["config"], "ok", metrics=metrics, env=cell["env"])
    assert low_end_pick() == "F16"


def test_pareto_front_matches_brute_force(rng):
    for n in (0, 1, 2, 7, 40):
        pts = rng.integers(0, 6, size=(n, 2)).astype(float)  # small range: many ties and duplicates
        brute = [i for i, (c, a) in enumerate(pts)
                 if not any(c2 <= c and a2 >= a and (c2 < c or a2 > a) for c2, a2 in pts)]
        assert pareto_front(pts.tolist()) == brute
    with pytest.raises(ValueError, match="finite"):
        pareto_front([(1.0, float("nan"))])


def test_study_rows_are_sane():
    rows = study.ROWS
    assert {r.table for r in rows} == {5, 6, 8, 9, 10, 11, 13, 14}
    assert len({(r.table, r.model, r.technique, r.dataset) for r in rows}) == len(rows) == 7 * 2 * 3 + 6 * 2 * 4 + 4
    for r in rows:
        assert r.model in study.TABLES.values() or r.technique == "KD"
        assert all(math.isfinite(v) for v in (r.acc, r.size_kb, r.lat_ms))
        assert 30 <= r.acc <= 100 and 5 <= r.size_kb <= 200_000 and 1 <= r.lat_ms <= 5_000, r
    for (table, model, tech, ds) in study.NOTES:
        assert any((r.table, r.model, r.technique, r.dataset) == (table, model, tech, ds) for r in rows)
    assert study.lookup("mobilenet_v2", "cifar10", "PRN").size_kb == 2876
    assert study.lookup("vgg16", "CIFAR100", "NQ").acc == 43.5
    assert study.lookup("resnet20", "cifar10", "NQ") is None and study.family("wrn16_4") == "WRN"
    assert "Sensors 2022, 22, 7344" in study.CITATION


def test_remark_verdicts_follow_the_numbers():
    def verdict(n, **techs):
        rows = _agg(**techs)
        for r in rows:
            r["params"] = 1e6
        return study.check_remarks(rows)[n - 1].verdict

    assert verdict(2, BLQ=(80.0, 260.0, 300.0), FIQ=(80.0, 250.0, 400.0)) == "holds"
    assert verdict(2, BLQ=(80.0, 260.0, 60.0), FIQ=(80.0, 250.0, 400.0)) == "partly holds"
    assert verdict(2, BLQ=(80.0, 260.0, 60.0)) == "does not hold"
    assert verdict(1, BLQ=(78.0, 260.0, 60.0)) == "does not hold"
    assert verdict(3, PRN=(79.5, 300.0, 50.0)) == "holds"
    assert verdict(3, PRN=(79.5, 300.0, 100.0)) == "does not hold"   # not faster
    assert verdict(4, PRN=(79.5, 300.0, 50.0)) == "not testable"     # one model only


def test_bad_input(db, tmp_path):
    missing = tmp_path / "nowhere.db"
    with pytest.raises(FileNotFoundError, match="nowhere.db"):
        report(missing, out=tmp_path / "r")
    assert not missing.exists()
    with pytest.raises(ValueError, match="format"):
        report(db, format="pdf", out=tmp_path / "r")
    with pytest.raises(ValueError, match="advisor_thresholds"):
        report(db, advisor_thresholds={"ultra": 1.0}, out=tmp_path / "r")
    with pytest.raises(ValueError, match="no cells of sweep 'other'"):
        report(db, sweep="other", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_aggregate_counts_seeds(db):
    [a] = [a for a in aggregate(db.cells()) if (a["model"], a["dataset"], a["technique"]) == HALF_FAILED[:3]]
    assert (a["n_ok"], a["n_failed"], a["seeds"], a["acc_std"]) == (1, 1, [0], None)


def test_a_remeasured_coordinate_counts_once_with_its_newest_row(tmp_path):
    db = ResultsDB(str(tmp_path / "r.db"))
    coords = {"sweep": "s", "model": "resnet20", "dataset": "cifar10", "technique": "PRN", "seed": 0}
    rng = np.random.default_rng(0)
    old, new = _cell("resnet20", "cifar10", "PRN", 0, rng), _cell("resnet20", "cifar10", "PRN", 0, rng)
    old["acc"], new["acc"] = 90.0, 70.0
    db.put_cell("prn-sparsity-0.5", coords, {"p": 0.5}, "ok", metrics=old, finished=100.0)
    db.put_cell("prn-sparsity-0.9", coords, {"p": 0.9}, "ok", metrics=new, finished=200.0)
    (a,) = aggregate(db.cells())
    assert a["acc"] == 70.0 and a["seeds"] == [0] and a["acc_std"] is None

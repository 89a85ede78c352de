"""The sweep report: the study's tables, plots, the AIoT advisor and the study's figures beside ours.

    report("results.db", format="all", out="report")   # report.md, report.csv, report.html, plots/

Every section is built once as a list of blocks (heading, paragraph, table, list, plot) and then
rendered to markdown or to one self-contained HTML page (CSS inline, plots as base64 PNG), so the
two formats can never disagree. Tables follow the study's Tables 5-14: one per model, a row per
technique, per dataset Acc (%), Size (KB), Lat (ms) (the whole test set, as the study) and our
batch-1 latency; a value is the mean over the seeds that finished, ± their sample std when there
are several. The CSV holds the database's own values, one row per cell.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
import statistics

from .. import _io
from . import advisor, study, techniques
from .db import COORDS, METRICS, ResultsDB

__all__ = ["FORMATS", "report", "tables_markdown", "aggregate", "pareto_front"]

FORMATS = ("all", "md", "csv", "html")
KB = 1000  # the study's KB: ResNet50's 90 extra CIFAR100 classes add 738 of them (study.py)

# (metric, column header, divisor, decimals or None for 4 significant digits)
COLUMNS = (("acc", "Acc (%)", 1, 2), ("size_bytes", "Size (KB)", KB, None),
           ("test_time_ms", "Lat (ms)", 1, None), ("lat_median_ms", "Lat@1 (ms)", 1, None))


# ------------------------------------------------------------------------------------ data
def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _technique_key(name: str):
    known = techniques.names()
    return (0, known.index(name), "") if name in known else (1, 0, name)


def _cell_key(r):
    return (_natural(r["model"]), _natural(r["dataset"]), _technique_key(r["technique"]), r.get("seed", 0))


def aggregate(rows: list) -> list:
    """One dict per (model, dataset, technique): every metric's mean over the seeds that finished
    (None when none did) and ``<metric>_std`` (sample std, None for fewer than two), with
    ``n_ok``, ``n_failed``, ``seeds`` and ``model_name`` (the zoo name behind the model label).
    A coordinate (model, dataset, technique, seed) measured more than once (a parameter changed,
    so the cell key did) counts once: its newest row."""
    newest: dict = {}
    for r in rows:
        k = (r["model"], r["dataset"], r["technique"], r["seed"])
        if k not in newest or (r["finished"] or 0) >= (newest[k]["finished"] or 0):
            newest[k] = r
    groups: dict = {}
    for r in newest.values():
        groups.setdefault((r["model"], r["dataset"], r["technique"]), []).append(r)
    out = []
    for (model, dataset, tech), cells in groups.items():
        ok = [c for c in cells if c["status"] == "ok"]
        a = {"model": model, "dataset": dataset, "technique": tech, "n_ok": len(ok),
             "n_failed": len(cells) - len(ok), "seeds": sorted(c["seed"] for c in ok),
             "model_name": cells[0]["config"].get("model", {}).get("name", model)}
        for k in METRICS:
            vals = [c[k] for c in ok if c[k] is not None]
            a[k] = statistics.fmean(vals) if vals else None
            a[k + "_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append(a)
    return sorted(out, key=_cell_key)


def pareto_front(points) -> list:
    """Indices (ascending) of the (cost, accuracy) points that no other point beats: lower cost
    and higher accuracy are better, and a point drops out only when another is at least as good in
    both and better in one (so exact duplicates on the front all stay)."""
    pts = [(float(c), float(a)) for c, a in points]
    if not all(math.isfinite(c) and math.isfinite(a) for c, a in pts):
        raise ValueError("points: expected finite (cost, accuracy) pairs")
    front, best = [], None  # best: (accuracy, cost) of the last point kept
    for i in sorted(range(len(pts)), key=lambda i: (pts[i][0], -pts[i][1])):
        c, a = pts[i]
        if best is None or a > best[0] or (a, c) == best:
            front.append(i)
            best = (a, c)
    return sorted(front)


def _decimals(v: float) -> int:
    """Decimals that show 4 significant digits of `v` without an exponent."""
    return max(0, 3 - math.floor(math.log10(abs(v)))) if v else 0


def _num(v: float, decimals=None) -> str:
    return f"{v:,.{_decimals(v) if decimals is None else decimals}f}"


def _value(a: dict | None, metric: str, div: float = 1, decimals=None) -> str:
    """A table cell: mean ± std, 'failed' when no seed finished, '-' when never run."""
    if a is None:
        return "-"
    if a[metric] is None:
        return "failed" if a["n_failed"] else "-"
    mean = a[metric] / div
    decimals = _decimals(mean) if decimals is None else decimals
    text = _num(mean, decimals)
    if a[metric + "_std"] is not None:  # as many decimals as the mean
        text += " ± " + _num(a[metric + "_std"] / div, decimals)
    return text + (f" ({a['n_failed']} failed)" if a["n_failed"] else "")


def _error_line(error: str | None) -> str:
    """The line that says what went wrong: a traceback's last line, else the first."""
    lines = [ln.strip() for ln in (error or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "(no error text)"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _plain(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_plain(x)}" for k, x in sorted(v.items()))
    return "" if v is None else str(v)


# ------------------------------------------------------------------------------------ blocks
def _h(level, text):
    return ("h", level, text)


def _p(text):
    return ("p", text)


def _table(columns, rows, groups=None):
    """groups: [(label, span)] over the columns: a header row above them in HTML, a prefix of
    each column's name in markdown."""
    return ("table", columns, rows, groups)


def _results_blocks(agg: list) -> list:
    images = sorted({round(a["test_images"]) for a in agg if a["test_images"] is not None})
    seeds = sorted({s for a in agg for s in a["seeds"]})
    out = [_h(2, "Results"), _p(
        "Acc: top-1 accuracy of the deployed Engine. Size: bytes of the .edgeopt file / 1000. "
        f"Lat: time to classify the whole test set one image at a time ({', '.join(f'{n:,}' for n in images) or '?'} images; the "
        "study's Lat). Lat@1: batch-1 latency, median. Mean over the seeds that finished "
        f"(seeds {', '.join(map(str, seeds)) or 'none'}), ± sample std when more than one.")]
    by_key = {(a["model"], a["dataset"], a["technique"]): a for a in agg}
    datasets = sorted({a["dataset"] for a in agg}, key=_natural)
    for model in sorted({a["model"] for a in agg}, key=_natural):
        techs = sorted({a["technique"] for a in agg if a["model"] == model}, key=_technique_key)
        columns = ["Technique"] + [head for _ in datasets for _, head, _, _ in COLUMNS]
        rows = [[t] + [_value(by_key.get((model, ds, t)), m, div, dec) for ds in datasets
                       for m, _, div, dec in COLUMNS] for t in techs]
        out += [_h(3, model), _table(columns, rows, [("", 1)] + [(ds, len(COLUMNS)) for ds in datasets])]
    return out


def _plot_names(agg: list) -> list:
    """(file stem, dataset, metric, title) of every plot."""
    out = []
    for ds in sorted({a["dataset"] for a in agg if a["acc"] is not None}, key=_natural):
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", ds)
        out += [(f"{stem}_acc_vs_size", ds, "size_bytes", f"{ds}: accuracy vs size"),
                (f"{stem}_acc_vs_latency", ds, "test_time_ms", f"{ds}: accuracy vs test-set time")]
    return out


def _advisor_blocks(agg: list, limits: dict) -> list:
    picks = advisor.advise(agg, limits)
    out = [_h(2, "AIoT strategy advisor"), _p(
        "The study's Section 4.3 tiers, decided from our measurements. Thresholds used: " + "; ".join(
            f"{advisor.TIERS[t]}: accuracy drop ≤ {limits[t]:g} pt vs NQ, then {advisor.RULES[t]}" for t in limits)
        + ". The study recommends: " + "; ".join(f"{t}-end {' or '.join(v)}" for t, v in study.ADVICE.items()) + ".")]
    cols = ["Tier", "Model", "Technique", "Acc (%)", "Drop (pt)", "Size (KB)", "Lat (ms)", "Why"]

    def row(p):
        return [advisor.TIERS[p.tier], p.model, p.technique, _num(p.acc, 2), _num(p.drop, 2),
                _num(p.size_bytes / KB), _num(p.test_time_ms), p.why]

    overall = [p for p in picks if p.scope == "overall"]
    per = [p for p in picks if p.scope == "model"]
    for ds in sorted({p.dataset for p in overall}, key=_natural):
        out += [_h(3, f"Overall, {ds} (every model)"), _table(cols, [row(p) for p in overall if p.dataset == ds])]
    if per:
        out += [_h(3, "Per model and dataset"),
                _table(["Dataset"] + cols, [[p.dataset] + row(p) for p in per])]
        agree = [f"{t}-end: {sum(p.technique in study.ADVICE[t] for p in per if p.tier == t)} of "
                 f"{sum(p.tier == t for p in per)} model/dataset picks are the study's "
                 f"{' or '.join(study.ADVICE[t])}" for t in limits]
        out.append(("ul", agree))
    missing = sorted({(a["model"], a["dataset"]) for a in agg} - {(p.model, p.dataset) for p in per})
    if missing:
        out.append(_p("Not advised (no finished NQ row): " + ", ".join(f"{m}/{d}" for m, d in missing) + "."))
    return out


def _ratio(x, y) -> str:
    return _num(x / y, 2) if x is not None and y else "-"


def _comparison_blocks(agg: list) -> list:
    nq = {(a["model"], a["dataset"]): a for a in agg if a["technique"] == "NQ" and a["acc"] is not None}
    rows = []
    for a in agg:
        s = study.lookup(a["model_name"], a["dataset"], a["technique"])
        ours = [_value(a, "acc", 1, 2), _value(a, "size_bytes", KB), _value(a, "test_time_ms")]
        if s is None:
            why = ("model not in the study" if study.family(a["model_name"]) is None else
                   "dataset not in the study" if study.study_dataset(a["dataset"]) is None else
                   "technique not in the study's table")
            rows.append([a["model"], a["dataset"], a["technique"], f"no match ({why})"] + ours + [""] * 7)
            continue
        s_nq = study.lookup(a["model_name"], a["dataset"], "NQ")
        base = nq.get((a["model"], a["dataset"]))
        rows.append([a["model"], a["dataset"], a["technique"], f"Table {s.table} {s.model}", *ours,
                     f"{s.acc:,g}", f"{s.size_kb:,g}", f"{s.lat_ms:,g}",  # as printed
                     _ratio(a["size_bytes"], base and base["size_bytes"]), _ratio(s.size_kb, s_nq and s_nq.size_kb),
                     _ratio(a["test_time_ms"], base and base["test_time_ms"]), _ratio(s.lat_ms, s_nq and s_nq.lat_ms)])
    notes = [f"Table {t} {m} {tech} {ds}: {n}" for (t, m, tech, ds), n in study.NOTES.items()]
    return [_h(2, "Comparison with the study"), _p(
        f"Published figures: {study.CITATION}. Their Lat is TensorFlow Lite on 10,000 test images on "
        "their hardware; ours is this machine on our test set, so the ratios to NQ compare better than "
        "the absolute numbers. Our zoo names map to the study's rows by family (vgg* to VGGNet, wrn* to "
        "WRN, mobilenet_v1/v2/v3_large/v3_small to M1/M2/M3L/M3s, resnet50 to ResNet50)."),
        _table(["Model", "Dataset", "Technique", "Study row", "Acc ours", "Size KB ours", "Lat ms ours",
                "Acc study", "Size KB study", "Lat ms study", "Size/NQ ours", "Size/NQ study",
                "Lat/NQ ours", "Lat/NQ study"], rows),
        _p("Published figures that look wrong, kept as printed:"), ("ul", notes)]


def _remark_blocks(agg: list) -> list:
    acc_tol, lat_tol = 1.0, 0.05
    out = [_h(2, "The study's remarks, checked"), _p(
        f"Measured on our rows (seed means): similar accuracy = at most {acc_tol:g} pt below NQ; a test-set "
        f"time counts as longer or shorter than NQ's only beyond {lat_tol:.0%}.")]
    for c in study.check_remarks(agg, acc_tol, lat_tol):
        out += [_h(3, f"Remark {c.number}: {c.verdict}"), _p(f"“{c.claim}”"), ("ul", c.evidence)]
    return out


def _failed_blocks(rows: list) -> list:
    failed = sorted((r for r in rows if r["status"] == "failed"), key=_cell_key)
    body = [[r["model"], r["dataset"], r["technique"], str(r["seed"]), r["key"], _error_line(r["error"])]
            for r in failed]
    return [_h(2, "Failed cells"),
            _table(["Model", "Dataset", "Technique", "Seed", "Key", "Error"], body) if body else _p("None.")]


def _env_blocks(rows: list) -> list:
    envs: dict = {}
    for r in rows:
        k = json.dumps(r["env"], sort_keys=True)
        envs[k] = envs.get(k, 0) + 1
    body = [[str(n), *(_plain(e.get(f)) for f in ("cpu", "isa", "threads", "versions", "git"))]
            for k, n in envs.items() for e in [json.loads(k)]]
    return [_h(2, "Environment"), _table(["Cells", "CPU", "ISA", "Threads", "Versions", "Git"], body)]


def _document(path: str, rows: list, agg: list, limits: dict) -> list:
    n_failed = sum(r["status"] == "failed" for r in rows)
    sweeps = sorted({r["sweep"] for r in rows})
    blocks = [_h(1, "edgeopt sweep report"), _p(
        f"Database {path}, sweep{'s' if len(sweeps) > 1 else ''} {', '.join(sweeps)}: {len(rows)} cells "
        f"({len(rows) - n_failed} ok, {n_failed} failed).")]
    blocks += _results_blocks(agg)
    blocks += [_h(2, "Plots"), _p("Pareto front (highest accuracy for the cost) drawn as a line, its points ringed.")]
    blocks += [("plot", stem, title) for stem, _, _, title in _plot_names(agg)]
    return (blocks + _advisor_blocks(agg, limits) + _comparison_blocks(agg) + _remark_blocks(agg)
            + _failed_blocks(rows) + _env_blocks(rows))


# ------------------------------------------------------------------------------------ renderers
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(blocks: list) -> str:
    out = []
    for b in blocks:
        if b[0] == "h":
            out.append("#" * b[1] + " " + b[2])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "ul":
            out.append("\n".join(f"- {_md_cell(i)}" for i in b[1]))
        elif b[0] == "plot":
            out.append(f"![{b[2]}](plots/{b[1]}.png) ([SVG](plots/{b[1]}.svg))")
        else:
            _, columns, rows, groups = b
            if groups:
                prefixes = [g for g, n in groups for _ in range(n)]
                columns = [f"{g} {c}".strip() for g, c in zip(prefixes, columns)]
            lines = ["| " + " | ".join(map(_md_cell, columns)) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0}td{text-align:right}td:first-child,td.text{text-align:left}td.failed{color:#b00;font-weight:600}
figure{display:inline-block;margin:0 1em 1em 0}img{max-width:640px}figcaption{font-size:12px;color:#555}"""


def _td(v: str) -> str:
    """A cell, right-aligned (the CSS default) when it is a number."""
    cls = "failed" if v.startswith("failed") else "" if re.match(r"[-+]?[\d,.]+( |$)|-$", v) else "text"
    return f'<td class="{cls}">{html.escape(v)}</td>' if cls else f"<td>{html.escape(v)}</td>"


def _html(blocks: list, images: dict) -> str:
    out = []
    for b in blocks:
        if b[0] == "h":
            out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            out.append(f"<p>{html.escape(b[1])}</p>")
        elif b[0] == "ul":
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b[1]) + "</ul>")
        elif b[0] == "plot":
            data = base64.b64encode(images[b[1]]).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                       f"<figcaption>{html.escape(b[2])}</figcaption></figure>")
        else:
            _, columns, rows, groups = b
            head = ""
            if groups:
                head = "<tr>" + "".join(f'<th colspan="{n}">{html.escape(g)}</th>' for g, n in groups) + "</tr>"
            head += "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
            body = "".join("<tr>" + "".join(map(_td, r)) + "</tr>" for r in rows)
            out.append(f"<table><thead>{head}</thead><tbody>{body}</tbody></table>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>edgeopt sweep report</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def _plots(agg: list) -> dict:
    """stem -> (PNG bytes, SVG bytes). matplotlib is imported here only, through the Agg canvas of
    a bare Figure (no pyplot: no global backend or figure registry is touched)."""
    from matplotlib.figure import Figure

    usable = [a for a in agg if a["acc"] is not None and a["size_bytes"] is not None and a["test_time_ms"] is not None]
    models = sorted({a["model"] for a in usable}, key=_natural)
    out = {}
    for stem, ds, metric, title in _plot_names(agg):
        pts = [a for a in usable if a["dataset"] == ds]
        div = KB if metric == "size_bytes" else 1
        xs, ys = [a[metric] / div for a in pts], [a["acc"] for a in pts]
        fig = Figure(figsize=(7.5, 4.8))
        ax = fig.add_subplot()
        # colour = model, marker = technique; only the Pareto points are named (the rest would
        # pile up where techniques share a size)
        marks = "osD^vP*XhH<>p"
        techs = sorted({a["technique"] for a in pts}, key=_technique_key)
        for k, a in enumerate(pts):
            ax.scatter(xs[k], ys[k], s=30, color=f"C{models.index(a['model']) % 10}",
                       marker=marks[techs.index(a["technique"]) % len(marks)], zorder=3)
        handles = [ax.scatter([], [], s=30, color=f"C{i % 10}", marker="o", label=m) for i, m in enumerate(models)]
        handles += [ax.scatter([], [], s=30, color="grey", marker=marks[i % len(marks)], label=t)
                    for i, t in enumerate(techs)]
        front = sorted(pareto_front(list(zip(xs, ys))), key=lambda k: xs[k])
        for k in front:
            ax.annotate(f"{pts[k]['model']}/{pts[k]['technique']}", (xs[k], ys[k]), xytext=(4, -9),
                        textcoords="offset points", fontsize=6)
        handles += ax.step([xs[k] for k in front], [ys[k] for k in front], where="post", color="k", lw=1,
                           label="Pareto front")
        ax.scatter([xs[k] for k in front], [ys[k] for k in front], s=80, facecolors="none", edgecolors="k", zorder=4)
        if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("Size (KB)" if metric == "size_bytes" else "Lat: test-set time (ms)")
        ax.set_ylabel("Acc (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=100, bbox_inches="tight")
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
        out[stem] = (png.getvalue(), svg.getvalue())
    return out


def _csv(rows: list) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*COORDS, "status", *METRICS, "key", "error_line"])
    for r in sorted(rows, key=_cell_key):
        w.writerow([*(r[c] for c in COORDS), r["status"], *("" if r[k] is None else r[k] for k in METRICS),
                    r["key"], _error_line(r["error"]) if r["status"] == "failed" else ""])
    return buf.getvalue().encode("utf-8")


# ------------------------------------------------------------------------------------ public
def tables_markdown(rows: list) -> str:
    """The results tables (one per model, the study's layout) as markdown, for printing."""
    return _markdown(_results_blocks(aggregate(rows)))


def report(db, format: str = "all", out="report", sweep: str | None = None,
           advisor_thresholds: dict | None = None) -> dict:
    """Write the report of results database `db` (a path or a ResultsDB) into folder `out`:
    ``report.md`` (+ ``plots/*.png|svg``), ``report.csv``, ``report.html`` (self-contained), as
    `format` asks ("all", "md", "csv", "html"). `sweep` limits it to one sweep's cells;
    `advisor_thresholds` overrides the advisor's accuracy drops ({"low", "mid", "high"}, points).
    Returns {kind: path} of the files written ("plots": a list)."""
    if not isinstance(format, str) or format not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    limits = advisor.check_thresholds(advisor_thresholds)
    if isinstance(db, ResultsDB):
        path, rows = db.path, db.cells(sweep=sweep)
    else:
        path = os.fspath(db)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"results database {path!r} does not exist")
        with ResultsDB(path, create=False) as results:
            rows = results.cells(sweep=sweep)
    if not rows:
        raise ValueError(f"results database {path!r} has no cells" + (f" of sweep {sweep!r}" if sweep else ""))

    out = os.fspath(out)
    written: dict = {}
    want = {"md", "csv", "html"} if format == "all" else {format}
    if "csv" in want:
        written["csv"] = os.path.join(out, "report.csv")
        _io.atomic_write_bytes(written["csv"], _csv(rows))
    if want & {"md", "html"}:
        agg = aggregate(rows)
        blocks, images = _document(path, rows, agg, limits), _plots(agg)
        if "md" in want:
            written["plots"] = []
            for stem, (png, svg) in images.items():
                for ext, data in (("png", png), ("svg", svg)):
                    p = os.path.join(out, "plots", f"{stem}.{ext}")
                    _io.atomic_write_bytes(p, data)
                    written["plots"].append(p)
            written["md"] = os.path.join(out, "report.md")
            _io.atomic_write_bytes(written["md"], _markdown(blocks).encode("utf-8"))
        if "html" in want:
            written["html"] = os.path.join(out, "report.html")
            page = _html(blocks, {k: png for k, (png, _) in images.items()})
            _io.atomic_write_bytes(written["html"], page.encode("utf-8"))
    return written

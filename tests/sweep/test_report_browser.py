"""The HTML report renders in a real browser: headless Chromium loads the page, a probe script
counts the images that decoded, and the dumped DOM must hold every table and every plot. The
same probe on a copy with one corrupted image must see it fail, so the check can fail."""
import pathlib
import re
import shutil
import subprocess

import pytest
from test_report import DATASETS, MODELS, make_db  # tests/sweep is on sys.path (pytest's prepend mode)

from edgeopt.sweep.report import report

PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-probe", ok + "/" + imgs.length);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is needed to check the HTML report and was not found: "
                "run tools/setup-system.sh (CI installs it; Debian package 'chromium')")


def _render(page: pathlib.Path, tmp_path) -> str:
    """The DOM after load, as Chromium serialises it."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000",
           "--dump-dom", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _probe(dom: str) -> tuple:
    m = re.search(r'data-probe="(\d+)/(\d+)"', dom)
    assert m, "the probe script did not run: " + dom[:300]
    return int(m.group(1)), int(m.group(2))


def test_html_report_renders_in_chromium(tmp_path):
    with make_db(tmp_path / "results.db") as db:
        page = pathlib.Path(report(db, format="html", out=tmp_path / "r")["html"])
    text = page.read_text(encoding="utf-8")
    # self-contained: nothing loaded from elsewhere
    assert not re.search(r'(src|href)="(?!data:)', text) and "<link" not in text

    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _render(probed, tmp_path)
    n_plots = 2 * len(DATASETS)
    assert _probe(dom) == (n_plots, n_plots)
    for model in MODELS:
        assert f"<h3>{model}</h3>" in dom
    for heading in ("Results", "AIoT strategy advisor", "Comparison with the study",
                    "The study's remarks, checked", "Failed cells", "Environment"):
        assert f"<h2>{heading}</h2>" in dom
    # per model a results table, advisor (2 overall + 1 per pair), comparison, failed cells, environment
    assert dom.count("<table>") == len(MODELS) + len(DATASETS) + 1 + 1 + 1 + 1
    assert re.search(r'<th colspan="4">cifar10</th>', dom)
    assert '<td class="failed">failed</td>' in dom

    # a corrupted image must show up as one that did not decode
    first = re.search(r'base64,([A-Za-z0-9+/=]{200})', text)
    broken = text.replace(first.group(0), "base64," + "A" * 200, 1)
    probed.write_text(broken.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    assert _probe(_render(probed, tmp_path)) == (n_plots - 1, n_plots)

"""The notebooks in notebooks/: each runs top to bottom in a fresh Jupyter kernel with its small
settings (EDGEOPT_NOTEBOOK_SMALL=1) and without an error, and git holds them without outputs.

Execution goes through nbclient with the ``python3`` kernel. jupyter_client resolves that name to
the ipykernel of the interpreter running pytest even when no kernelspec is installed (native kernel
discovery; a spec whose argv starts with ``python`` runs ``sys.executable``), so the kernel imports
the same edgeopt as this process: its folder goes first on the kernel's PYTHONPATH. The kernel
starts in a temporary folder, so what the notebooks write (engines, results databases, reports)
lands there."""
import json
import os
import pathlib

import pytest

import edgeopt

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
_IPROGRESS = "TqdmWarning: IProgress not found"


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_notebooks_exist():
    assert {"quickstart", "study_reproduction", "quantization"} <= set(IDS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_clean(path):
    """No outputs or execution counts in git, and the small settings are read up front."""
    nb = _read_json(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name}: no code cells"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has stored outputs (strip them)"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"
        assert "execution" not in cell.get("metadata", {}), f"{path.name}: cell {i} has execution timings"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: stored widget state"
    first = "".join(code[0]["source"])
    assert "EDGEOPT_NOTEBOOK_SMALL" in first, f"{path.name}: the first code cell must read EDGEOPT_NOTEBOOK_SMALL"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    package_root = str(pathlib.Path(edgeopt.__file__).resolve().parent.parent)
    monkeypatch.setenv("EDGEOPT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.delenv("MPLBACKEND", raising=False)   # let ipykernel choose its inline backend

    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()   # raises CellExecutionError, naming the cell, if any cell raises

    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: cell {i} raised {out.get('ename')}"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                # a warning printed by the notebook's code (progress bars also write to stderr);
                # tqdm's note that ipywidgets is missing (it then draws text bars) is the setup's
                warned = [ln for ln in out["text"].splitlines() if "Warning:" in ln and _IPROGRESS not in ln]
                assert not warned, f"{path.name}: cell {i} warned:\n{out['text']}"

"""The edgeopt command line."""
import subprocess
import sys

from edgeopt.cli import main


def test_help_lists_commands():
    r = subprocess.run([sys.executable, "-m", "edgeopt.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("train", "summary"):
        assert cmd in r.stdout


def test_train_on_synthetic_prints_accuracy(capsys):
    assert main(["train", "--model", "resnet20", "--dataset", "synthetic", "--epochs", "1",
                 "--subset", "256", "--width", "0.25", "--quiet", "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out


def test_summary_prints_totals(capsys):
    assert main(["summary", "--model", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "resnet20" in out.lower() or "params" in out.lower()


def test_unknown_model_is_a_clear_error(capsys):
    assert main(["train", "--model", "resnet21", "--dataset", "synthetic", "--epochs", "1", "--quiet"]) == 2
    assert "resnet21" in capsys.readouterr().err


def test_python_m_edgeopt_lists_the_sweep_commands():
    r = subprocess.run([sys.executable, "-m", "edgeopt", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("train", "summary", "sweep", "report", "bench"):
        assert cmd in r.stdout


def test_sweep_then_report(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "cli"\ntechniques = ["NQ", "F16"]\nthreads = 1\ncalibration = 16\n'
                    'latency = {runs = 3, warmup = 1}\n'
                    '[[models]]\nname = "resnet20"\nwidth = 0.25\n'
                    '[[datasets]]\nname = "synthetic"\nshape = [1, 8, 8]\nn_train = 128\nn_test = 64\n'
                    '[budget]\nepochs = 1\nbatch_size = 64\n')
    db = str(tmp_path / "r.db")
    assert main(["sweep", str(spec), "--db", db, "--quiet", "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "2 cells: 0 already in" in out and "| NQ" in out and "| F16" in out
    assert (tmp_path / "rep" / "report.html").exists() and (tmp_path / "rep" / "report.csv").exists()
    assert main(["sweep", str(spec), "--db", db, "--quiet", "--no-report"]) == 0
    assert "2 cells: 2 already in" in capsys.readouterr().out
    assert main(["report", db, "--format", "csv", "--out", str(tmp_path / "rep2")]) == 0
    assert (tmp_path / "rep2" / "report.csv").exists() and not (tmp_path / "rep2" / "report.html").exists()


def test_sweep_bad_spec_names_the_field(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('techniques = ["NQ", "NOPE"]\nmodels = ["resnet20"]\ndatasets = ["synthetic"]\n')
    assert main(["sweep", str(spec), "--db", str(tmp_path / "r.db")]) == 2
    assert "spec.techniques[1].name" in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists()
    assert main(["report", str(tmp_path / "missing.db")]) == 2
    assert "missing.db" in capsys.readouterr().err


def test_bench_prints_a_latency_table(capsys):
    assert main(["bench", "--models", "resnet20", "--schemes", "fp32", "int8-full", "--runs", "3", "--size", "16"]) == 0
    out = capsys.readouterr().out
    assert "ISA" in out and "resnet20" in out and "int8-full" in out

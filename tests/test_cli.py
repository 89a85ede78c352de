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

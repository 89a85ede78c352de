"""Engines shared by many threads while another thread changes set_num_threads (issue 10): no
crash, no wrong output, on every ISA path the CPU has. The stress runs in a subprocess
(tests/stress_threads.py) so a crash fails this test instead of killing the suite."""
import json
import pathlib
import subprocess
import sys

import pytest

from edgeopt import _core
from isa_paths import ISAS

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "stress_threads.py"  # tests/deploy/ -> tests/


@pytest.mark.parametrize("isa", ISAS)
def test_engine_and_training_kernels_survive_thread_count_changes(isa):
    p = subprocess.run([sys.executable, str(SCRIPT), "--isa", isa, "--seconds", "3", "--train"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}"
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["isa"] == isa and r["wrong"] == 0 and not r["errors"]
    # The run must have exercised what it claims: many runs, many thread-count changes meanwhile.
    assert r["runs"] >= 50 and r["thread_changes"] >= 50, r

"""Builds the C++ kernel tests (cpp/tests) against the kernel library and runs them: every fast
path (each ISA this CPU has) is compared with its plain reference there."""
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]  # tests/kernels/ -> the repo root


def test_cpp_kernel_tests_pass():
    build = ROOT / "build" / "ctest"
    cfg = ["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
           "-DEDGEOPT_PYTHON=OFF", "-DEDGEOPT_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release"]
    subprocess.run(cfg, check=True, capture_output=True, text=True)
    r = subprocess.run(["cmake", "--build", str(build), "--target", "kernel_tests"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    r = subprocess.run([str(build / "kernel_tests")], capture_output=True, text=True, timeout=600)
    sys.stdout.write(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " 0 failed" in r.stdout

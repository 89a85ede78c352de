"""Concurrency stress for the deploy runtime and the training kernels: runner threads loop
``engine.run`` on shared engines (and conv2d forward + backward, with --train) while another thread
keeps changing ``edgeopt.set_num_threads``. Every output is compared with the output at one
thread; any mismatch, crash or sanitizer report fails the run.

    python tests/stress_threads.py --isa avx2 --seconds 60 [--runners 8] [--train]

Prints one JSON line (runs, wrong, thread-count changes per ISA path) and exits 1 on a wrong
output. tests/test_deploy_concurrency.py runs it briefly on every ISA path the CPU has;
tools/sanitize.sh runs it under AddressSanitizer + UBSan.
"""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import sys
import threading
import time

import numpy as np

try:
    import edgeopt as eo
except ImportError:  # a source checkout with the dev build
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "python"))
    import edgeopt as eo

THREAD_COUNTS = (1, 2, 3, 4, 8)
BATCHES = (1, 2, 3, 4)


def engines(schemes):
    """resnet20 (width 0.5) in each scheme: split convs (workspace sized by the thread count),
    residual adds, pooling and the classifier. "binary-all": binary weights and activations
    everywhere but the stem and the classifier, so that XNOR convs hand each other bit planes
    (on the direct path)."""
    model = eo.models.create("resnet20", num_classes=10, in_channels=3, width_mult=0.5)
    model.eval()
    calib = eo.data.synthetic(10, (3, 32, 32), n_train=64, n_test=0, seed=1)[0]
    out = {}
    for s in schemes:
        m, scheme = model, s
        if s == "binary-all":
            m, scheme = copy.deepcopy(model), "binary"
            eo.quant.prepare_qat(m, (1, 3, 32, 32), weight_bits=1, activations=False, binary_activations="all")
            m.train()
            with eo.nn.no_grad():  # sets the sign thresholds
                m(np.random.default_rng(2).standard_normal((16, 3, 32, 32)).astype(np.float32))
            m.eval()
            eo.quant.convert(m)
        out[s] = eo.deploy.compile(m, scheme=scheme, input_shape=(1, 3, 32, 32),
                                   calib=calib if s == "int8-full" else None)
    return out


def conv_step(x, w, stride):
    """conv2d forward + backward with dy = y: (y, dw, dx)."""
    F = eo.nn.functional
    y = F.conv2d(x, w, None, stride, 1)
    dw = np.zeros_like(w)
    dx = F.conv2d_backward(y, x, w, dw, None, stride, 1)
    return y, dw, dx


def conv_cases(rng):
    """Training convs whose strategy depends on the thread count (image-parallel when N >= threads,
    parallel GEMMs inside one image otherwise)."""
    out = []
    for n, stride in ((1, 1), (2, 2), (3, 1), (8, 1)):
        x = rng.standard_normal((n, 16, 16, 16)).astype(np.float32)
        w = (rng.standard_normal((24, 16, 3, 3)) * 0.1).astype(np.float32)
        out.append((x, w, stride))
    return out


def close(got, ref) -> bool:
    # Results may differ in the last bits between thread counts (summation order).
    return all(np.allclose(g, r, rtol=1e-4, atol=1e-4 * float(np.abs(r).max())) for g, r in zip(got, ref))


def stress(isa: str, seconds: float, runners: int, schemes, train: bool) -> dict:
    eo._core.runtime.set_isa(isa)
    engs = engines(schemes)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((b, 3, 32, 32)).astype(np.float32) for b in BATCHES]
    eo.set_num_threads(1)
    cases = [((lambda e=e, x=x: (e.run(x),)), (e.run(x),)) for e in engs.values() for x in xs]
    if train:
        cases += [((lambda c=c: conv_step(*c)), conv_step(*c)) for c in conv_cases(rng)]
    stop = time.monotonic() + seconds
    counts = {"runs": 0, "wrong": 0, "thread_changes": 0}
    lock = threading.Lock()
    errors = []

    def runner(k):
        i, runs, wrong = k, 0, 0
        try:
            while time.monotonic() < stop:
                call, ref = cases[i % len(cases)]
                if not close(call(), ref):
                    wrong += 1
                runs += 1
                i += 1
        except BaseException as err:  # noqa: BLE001  (reported below)
            errors.append(repr(err))
        with lock:
            counts["runs"] += runs
            counts["wrong"] += wrong

    def changer():
        i = 0
        while time.monotonic() < stop:
            eo.set_num_threads(THREAD_COUNTS[i % len(THREAD_COUNTS)])
            i += 1
            time.sleep(0.0002)
        counts["thread_changes"] = i

    threads = [threading.Thread(target=runner, args=(k,)) for k in range(runners)]
    threads.append(threading.Thread(target=changer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts["errors"] = errors
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isa", default="all", help="scalar, avx2, avx512 or all (every path the CPU has)")
    ap.add_argument("--seconds", type=float, default=10.0, help="per ISA path")
    ap.add_argument("--runners", type=int, default=8)
    ap.add_argument("--schemes", default="fp32,fp16,int8-full,binary-all")
    ap.add_argument("--train", action="store_true", help="also conv2d forward + backward")
    args = ap.parse_args(argv)
    levels = ["scalar", "avx2", "avx512"]
    isas = levels[: levels.index(eo._core.runtime.cpu_isa()) + 1] if args.isa == "all" else [args.isa]
    failed = False
    for isa in isas:
        r = stress(isa, args.seconds, args.runners, args.schemes.split(","), args.train)
        print(json.dumps({"isa": isa, "seconds": args.seconds, "runners": args.runners, "train": args.train, **r}),
              flush=True)
        failed |= r["wrong"] > 0 or bool(r["errors"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

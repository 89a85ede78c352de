"""Training BatchNorm fused with its activation, forward and backward, on one tensor: edgeopt on
every ISA path this CPU has against PyTorch's BatchNorm2d + activation (autograd), same run.

    PYTHONPATH=python python benchmarks/bench_batchnorm.py [--shape 64 144 32 32] [--threads 1]

At --threads 1 the clock is this thread's CPU time (time.thread_time), else wall time; min of 7.
"""
import argparse
import time

import numpy as np
import torch

import edgeopt as eo
from edgeopt import _core
from edgeopt.nn import functional as F
from bench_train_step import time_steps

TORCH_ACTS = {"none": torch.nn.Identity, "relu": torch.nn.ReLU, "relu6": torch.nn.ReLU6,
              "hardswish": torch.nn.Hardswish}


def best_ms(f, clock):
    return 1e3 * min(time_steps(f, 1, 7, clock))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, nargs=4, default=[64, 144, 32, 32])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    eo.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    clock = time.thread_time if a.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    x = rng.standard_normal(a.shape).astype(np.float32)
    dy = rng.standard_normal(a.shape).astype(np.float32)
    c = a.shape[1]
    g, b = np.ones(c, np.float32), np.zeros(c, np.float32)
    dg, db = np.zeros(c, np.float32), np.zeros(c, np.float32)
    print(f"x {tuple(a.shape)}, {a.threads} thread(s), ms (min of 7): forward / backward")
    saved = _core.runtime.active_isa()
    paths = ["scalar", "avx2", "avx512"]
    paths = paths[:paths.index(_core.runtime.cpu_isa()) + 1]
    try:
        for act in TORCH_ACTS:
            row = []
            for isa in paths:
                _core.runtime.set_isa(isa)
                _, m, s = F.batch_norm_train(x, g, b, None, None, act=act)
                fwd = best_ms(lambda: F.batch_norm_train(x, g, b, None, None, act=act), clock)
                bwd = best_ms(lambda: F.batch_norm_backward(dy, x, g, m, s, dg, db, b, act), clock)
                row.append(f"{isa} {fwd:6.2f} / {bwd:6.2f}")
            bn = torch.nn.Sequential(torch.nn.BatchNorm2d(c), TORCH_ACTS[act]())
            xt, dyt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)
            tf = best_ms(lambda: bn(xt), clock)
            tb = best_ms(lambda: torch.autograd.grad(bn(xt), xt, dyt), clock) - tf
            print(f"{act:10s} edgeopt " + "   ".join(row) + f"   | PyTorch {tf:6.2f} / {tb:6.2f}")
    finally:
        _core.runtime.set_isa(saved)


if __name__ == "__main__":
    main()

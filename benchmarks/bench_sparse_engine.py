"""Sparse weights in the deployed Engine: batch-1 latency and file size, dense vs pruned + sparse
ops, measured in the same run.

Models (edgeopt.deploy.compile, fp32):
  dense            mobilenet_v2 as created (BatchNorm statistics from one pass over random input)
  pruned, dense    the same model 90 % magnitude-pruned, compiled with sparse=False (the peer:
                   same weights, dense kernels)
  pruned, sparse   the same pruned model, sparse="auto" (1x1 convs / linear with >= 70 % zeros
                   run as sparse ops) and sparse=True (every 1x1 conv / linear sparse)
Pruning: global and per-layer unstructured magnitude (1x1 CSR blocks), and per-layer 8x1 blocks.
Global pruning of an untrained network is uneven (layers with small init weights lose ~everything),
so the per-layer rows are the more representative ones for a trained model.
Layers (engine level): one 1x1 conv, 90 % zeros per layer, as a one-op Engine, dense vs sparse.

Timing: engines are timed round-robin (--rounds rounds; each a warm-up and --runs/--rounds timed
calls of engine.run on a preallocated batch-1 input), so load from other processes hits them
alike. Median and p90 over all timed calls. On a shared machine read medians and ratios.

    PYTHONPATH=python python benchmarks/bench_sparse_engine.py [--threads 1 2] [--runs 400] [--size 32]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import edgeopt as eo
from edgeopt import deploy

LAYERS = [  # (name, Cin, Cout, H, W) 1x1 convs as in mobilenet_v2 / resnet
    ("mbv2 expand 24->144 @32x32", 24, 144, 32, 32),
    ("mbv2 expand 64->384 @8x8", 64, 384, 8, 8),
    ("mbv2 project 576->96 @8x8", 576, 96, 8, 8),
    ("mbv2 expand 96->576 @14x14", 96, 576, 14, 14),
    ("resnet 256->256 @16x16", 256, 256, 16, 16),
]


def with_bn_stats(model, size, seed=0):
    """BatchNorm running statistics from one train-mode pass (momentum 1) over random input."""
    bns = [m for m in model.modules() if isinstance(m, eo.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
    model.train()
    with eo.nn.no_grad():
        model.forward(np.random.default_rng(seed).standard_normal((4, 3, size, size)).astype(np.float32))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def time_round_robin(engines: dict, runs: int, rounds: int, warmup: int = 5) -> dict:
    xs = {k: np.random.default_rng(0).standard_normal((1,) + tuple(e.input_shape)).astype(np.float32)
          for k, e in engines.items()}
    times = {k: [] for k in engines}
    per = max(1, runs // rounds)
    for _ in range(rounds):
        for k, e in engines.items():
            x = xs[k]
            for _ in range(warmup):
                e.run(x)
            for _ in range(per):
                t0 = time.perf_counter_ns()
                e.run(x)
                times[k].append((time.perf_counter_ns() - t0) / 1e6)
    return {k: (float(np.median(t)), float(np.percentile(t, 90))) for k, t in times.items()}


def model_engines(size: int) -> dict:
    eo.manual_seed(0)
    shape = (1, 3, size, size)
    base = with_bn_stats(eo.models.create("mobilenet_v2"), size)
    out = {"dense (unpruned)": deploy.compile(base, input_shape=shape, sparse=False)}
    for label, kw in (("global", {"scope": "global"}), ("layer", {"scope": "layer"}),
                      ("layer 8x1", {"scope": "layer", "block": (8, 1)})):
        p = with_bn_stats(eo.prune.magnitude(base, 0.9, **kw), size)
        out[f"90% {label}, dense"] = deploy.compile(p, input_shape=shape, sparse=False)
        out[f"90% {label}, sparse auto"] = deploy.compile(p, input_shape=shape, sparse="auto")
        if label == "layer":
            out[f"90% {label}, sparse all 1x1"] = deploy.compile(p, input_shape=shape, sparse=True)
    return out


def layer_engines(block) -> dict:
    out = {}
    for name, cin, cout, h, w in LAYERS:
        eo.manual_seed(0)
        conv = eo.nn.Conv2d(cin, cout, 1)
        p = eo.prune.magnitude(conv, 0.9, scope="layer", block=block)
        out[name, "dense"] = deploy.compile(p, input_shape=(1, cin, h, w), sparse=False)
        out[name, "sparse"] = deploy.compile(p, input_shape=(1, cin, h, w), sparse=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--size", type=int, default=32, help="input H = W for mobilenet_v2 (32: CIFAR)")
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.rounds = 80, 4
    print(f"edgeopt {eo.__version__}  isa {eo._core.runtime.active_isa()}  cores {eo._core.runtime.get_num_threads()}  "
          f"runs {a.runs} in {a.rounds} rounds (medians, ms, batch 1)")
    models = model_engines(a.size)
    layers = {blk: layer_engines(blk) for blk in (None, (8, 1))}
    for th in a.threads:
        eo.set_num_threads(th)
        print(f"\n== mobilenet_v2 @ {a.size}x{a.size}, threads {th}")
        r = time_round_robin(models, a.runs, a.rounds)
        ref = r["dense (unpruned)"][0]
        print(f"{'engine':<30} {'median':>8} {'p90':>8} {'vs dense':>9} {'file KB':>9}")
        for k, e in models.items():
            peer = r.get(k.replace("sparse auto", "dense").replace("sparse all 1x1", "dense"), (ref,))[0]
            print(f"{k:<30} {r[k][0]:8.3f} {r[k][1]:8.3f} {ref / r[k][0]:8.2f}x {e.size_bytes / 1024:9.1f}"
                  + (f"   ({peer / r[k][0]:.2f}x vs same weights dense)" if "sparse" in k else ""))
        for blk, eng in layers.items():
            print(f"\n== one 1x1 conv, 90% zeros ({'unstructured' if blk is None else '8x1 blocks'}), threads {th}")
            r = time_round_robin(eng, a.runs, a.rounds)
            print(f"{'layer':<30} {'dense ms':>9} {'sparse ms':>10} {'speedup':>8} {'dense KB':>9} {'sparse KB':>10}")
            for name, *_ in LAYERS:
                d, s = r[name, "dense"][0], r[name, "sparse"][0]
                print(f"{name:<30} {d:9.4f} {s:10.4f} {d / s:7.2f}x {eng[name, 'dense'].size_bytes / 1024:9.1f} "
                      f"{eng[name, 'sparse'].size_bytes / 1024:10.1f}")


if __name__ == "__main__":
    main()

"""Sparse, binary and low-bit inference kernels against their dense peers, measured in the same run.

  fp32:   90 %-sparse 1x1 conv (edgeopt._core.testing.spmm, NCHW) vs the dense fp32 paths on the same
          shape: sgemm (W (Cout, Cin) @ X (Cin, HW)) and conv2d_forward; the faster dense one is
          the baseline. Unstructured (1x1) sparsity, and 4x1 / 8x1 blocks pruned as blocks.
  int8:   90 %-sparse qspmm vs dense qgemm (u8 x s8, same requantization) on the same shape.
  binary: b1_conv2d (binarize, XNOR-popcount: the direct kernel (stride 1 or 2) where the CPU has
          Ice Lake's AVX-512 set, else bit im2col + GEMM; planned per call) vs fp32 conv2d_forward, 3x3. The
          layer as deployed (one-op Engines) is in bench_deploy_latency.py --layers.
  2/4-bit: lowbit_sgemm (decode while packing) vs sgemm on the fp32 weights.

Shapes (batch 1): ResNet 1x1 convs (Cin = Cout = 256 at 8x8 and 16x16, bottleneck 64 -> 256 at
16x16), MobileNet-v2 (224 input) expand / project 1x1 convs; ResNet-style 3x3 convs for binary.
Times are medians of interleaved repetitions (the machine may be shared: read ratios, not
absolutes). Weights are packed outside the timed region, as a compiled model does.

    PYTHONPATH=python python benchmarks/bench_sparse.py [--threads 1 2] [--reps 200] [--quick]
"""
import argparse
import time

import numpy as np

from edgeopt import _core

SPMM_SHAPES = [  # (name, Cin, Cout, H, W)
    ("resnet 1x1 256->256 @8x8", 256, 256, 8, 8),
    ("resnet 1x1 256->256 @16x16", 256, 256, 16, 16),
    ("resnet 1x1 64->256 @16x16", 64, 256, 16, 16),
    ("mbv2 expand 24->144 @56", 24, 144, 56, 56),
    ("mbv2 project 144->24 @56", 144, 24, 56, 56),
    ("mbv2 expand 96->576 @14", 96, 576, 14, 14),
    ("mbv2 project 576->96 @14", 576, 96, 14, 14),
    ("mbv2 expand 160->960 @7", 160, 960, 7, 7),
    ("mbv2 project 960->160 @7", 960, 160, 7, 7),
]
B1_SHAPES = [  # (name, Cin, Cout, H, W), 3x3, stride 1, padding 1
    ("resnet20 3x3 16->16 @32", 16, 16, 32, 32),
    ("resnet20 3x3 32->32 @16", 32, 32, 16, 16),   # the middle stage (issue 13's shape)
    ("resnet20 3x3 64->64 @8", 64, 64, 8, 8),
    ("resnet 3x3 128->128 @16", 128, 128, 16, 16),
    ("resnet 3x3 256->256 @8", 256, 256, 8, 8),
]


def median_times(fns, reps):
    """Median seconds of each function, runs interleaved so load changes hit all alike."""
    for f in fns:
        for _ in range(5):
            f()
    times = [[] for _ in fns]
    for _ in range(reps):
        for i, f in enumerate(fns):
            t = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t)
    return [float(np.median(t)) for t in times]


def pruned(rng, cout, cin, sparsity, block=(1, 1)):
    br, bc = block
    w = rng.standard_normal((cout, cin)).astype(np.float32)
    keep = rng.random((-(-cout // br), -(-cin // bc))) >= sparsity
    return w * np.repeat(np.repeat(keep, br, 0), bc, 1)[:cout, :cin]


def bench_f32(rng, reps, sparsity):
    print(f"\nfp32 1x1 conv, {sparsity:.0%} sparse vs dense (median us; speedup = dense / sparse)")
    print(f"{'shape':30s} {'thr':>3s} {'dense':>8s} {'1x1':>8s} {'4x1':>8s} {'8x1':>8s}   x(1x1) x(4x1) x(8x1)")
    rows = []
    for name, cin, cout, h, w in SPMM_SHAPES:
        x = rng.standard_normal((1, cin, h, w)).astype(np.float32)
        x2 = x.reshape(cin, h * w)
        wd = rng.standard_normal((cout, cin)).astype(np.float32)
        w4 = wd.reshape(cout, cin, 1, 1)
        packs = [_core.sparse.spmm_pack(pruned(rng, cout, cin, sparsity, b), b) for b in [(1, 1), (4, 1), (8, 1)]]
        for th in THREADS:
            _core.runtime.set_num_threads(th)
            fns = [lambda: _core.testing.sgemm(wd, x2),
                   lambda: _core.conv.conv2d_forward(x, w4, None, (1, 1), (0, 0), 1)]
            fns += [lambda p=p: _core.testing.spmm(x, p) for p in packs]
            t = median_times(fns, reps)
            dense = min(t[0], t[1])
            sp = [dense / s for s in t[2:]]
            rows.append((name, th, sp[0]))
            print(f"{name:30s} {th:3d} {dense*1e6:8.1f} " + " ".join(f"{s*1e6:8.1f}" for s in t[2:])
                  + "   " + " ".join(f"{v:6.2f}" for v in sp))
    return rows


def bench_qs8(rng, reps, sparsity):
    print(f"\nint8 1x1 conv, {sparsity:.0%} sparse (qspmm, NCHW) vs dense qgemm (NHWC), median us")
    print(f"{'shape':30s} {'thr':>3s} {'qgemm':>8s} {'qspmm':>8s} {'speedup':>8s}")
    for name, cin, cout, h, w in SPMM_SHAPES:
        hw = h * w
        wq = rng.integers(-127, 128, (cout, cin), dtype=np.int8)
        ws = np.where(rng.random((cout, cin)) >= sparsity, wq, 0).astype(np.int8)
        x = rng.integers(0, 256, (1, cin, h, w), dtype=np.uint8)
        a = np.ascontiguousarray(x.reshape(cin, hw).T)
        packed_dense = _core.testing.qgemm_pack(wq, transposed=True)
        packed_sparse = _core.testing.qspmm_pack(ws)
        scale = 2.0**-17  # float32 requantization factor, one for all channels
        for th in THREADS:
            _core.runtime.set_num_threads(th)
            t = median_times([lambda: _core.testing.qgemm(a, packed_dense, 3, None, scale, 5),
                              lambda: _core.testing.qspmm(x, packed_sparse, 3, None, scale, 5)], reps)
            print(f"{name:30s} {th:3d} {t[0]*1e6:8.1f} {t[1]*1e6:8.1f} {t[0]/t[1]:8.2f}")


def bench_b1(rng, reps):
    print("\nbinary 3x3 conv (b1_conv2d, incl. binarize and planning) vs fp32 conv2d_forward, median us")
    print(f"{'shape':30s} {'thr':>3s} {'fp32':>8s} {'binary':>8s} {'speedup':>8s}")
    for name, cin, cout, h, w in B1_SHAPES:
        x = rng.standard_normal((1, cin, h, w)).astype(np.float32)
        wt = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
        packed = _core.testing.b1_conv2d_pack(wt)
        for th in THREADS:
            _core.runtime.set_num_threads(th)
            t = median_times([lambda: _core.conv.conv2d_forward(x, wt, None, (1, 1), (1, 1), 1),
                              lambda: _core.testing.b1_conv2d(x, packed, None, 1, 1)], reps)
            print(f"{name:30s} {th:3d} {t[0]*1e6:8.1f} {t[1]*1e6:8.1f} {t[0]/t[1]:8.2f}")


def bench_lowbit(rng, reps):
    print("\n2/4-bit weights decoded while packing (lowbit_sgemm) vs sgemm on fp32 weights, median us")
    print(f"{'shape (M x K @ K x N)':30s} {'thr':>3s} {'sgemm':>8s} {'4-bit':>8s} {'2-bit':>8s}")
    for m, k, n in [(256, 256, 64), (64, 576, 64), (576, 96, 196)]:
        b = rng.standard_normal((k, n)).astype(np.float32)
        scale = np.full(m, 0.1, np.float32)
        q4 = rng.integers(-8, 8, (m, k), dtype=np.int8)
        q2 = rng.integers(-2, 2, (m, k), dtype=np.int8)
        w = scale[:, None] * q4.astype(np.float32)
        p4, p2 = _core.testing.lowbit_pack(q4, 4), _core.testing.lowbit_pack(q2, 2)
        for th in THREADS:
            _core.runtime.set_num_threads(th)
            t = median_times([lambda: _core.testing.sgemm(w, b),
                              lambda: _core.testing.lowbit_sgemm(p4, k, 4, scale, b),
                              lambda: _core.testing.lowbit_sgemm(p2, k, 2, scale, b)], reps)
            print(f"{f'{m}x{k} @ {k}x{n}':30s} {th:3d} " + " ".join(f"{v*1e6:8.1f}" for v in t))


def main():
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--quick", action="store_true", help="20 repetitions (smoke run)")
    args = ap.parse_args()
    THREADS = args.threads
    reps = 20 if args.quick else args.reps
    rng = np.random.default_rng(0)
    print(f"isa={_core.runtime.active_isa()} cpu_isa={_core.runtime.cpu_isa()} threads={THREADS} reps={reps}")
    rows = bench_f32(rng, reps, args.sparsity)
    bench_qs8(rng, reps, args.sparsity)
    bench_b1(rng, reps)
    bench_lowbit(rng, reps)
    sp = [r[2] for r in rows]
    print(f"\nfp32 1x1 unstructured {args.sparsity:.0%}: speedup over dense min {min(sp):.2f}, "
          f"median {np.median(sp):.2f}, max {max(sp):.2f} (acceptance >= 1.5, goal 3)")


THREADS = [1, 2]
if __name__ == "__main__":
    main()

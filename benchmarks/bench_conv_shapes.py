"""Per-shape conv2d forward/backward time, edgeopt vs PyTorch CPU, measured in the same run.

Shapes: every distinct conv of ResNet-20 (CIFAR, batch 128), of MobileNetV1 (CIFAR variant, 32x32
input, batch 64), of MobileNetV2 (CIFAR variant, 32x32 input, batch 32) and of VGG-11 (32x32, batch
128), with how often each occurs in the network (tests/shapes.py, the list the conv kernel tests
run too). Prints, per shape, the median
time of edgeopt and torch for forward and backward (dx + dw + db) and the speed ratio
torch_time / edgeopt_time (> 1: edgeopt is faster), then the per-network totals weighted by count.

    PYTHONPATH=python python benchmarks/bench_conv_shapes.py [--threads 2] [--net resnet20|mobilenetv1|mobilenetv2|vgg11|all]

At --threads 1 the clock is this thread's CPU time (time.thread_time): neither library starts
worker threads then, and CPU time does not count the time the process waits for a core taken by
other work, which makes one-thread numbers usable on a busy machine. With more threads it is wall
time, min of 5: treat those ratios as noisy.
"""
import argparse
import pathlib
import sys
import time

import numpy as np
import torch

import edgeopt as eo
from edgeopt import _core

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from shapes import mobilenetv1_conv_shapes, mobilenetv2_conv_shapes, resnet20_conv_shapes, vgg11_conv_shapes  # noqa: E402  (shared with the kernel tests)


CLOCK = time.perf_counter


def bench(fn, min_time=0.3, reps=5):
    clock = CLOCK
    fn()
    t0 = clock()
    fn()
    one = clock() - t0
    inner = max(1, int(min_time / reps / max(one, 1e-6)))
    times = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - t0) / inner)
    return float(np.min(times))  # min: the machine may be shared, noise only adds time


def make_inputs(shape, rng):
    N, cin, h, w, cout, k, s, p, g, need_dx = shape
    x = rng.standard_normal((N, cin, h, w), dtype=np.float32)
    wt = rng.standard_normal((cout, cin // g, k, k), dtype=np.float32) * 0.1
    b = np.zeros(cout, np.float32)
    oh = (h + 2 * p - k) // s + 1
    dy = rng.standard_normal((N, cout, oh, oh), dtype=np.float32)
    return x, wt, b, dy


def time_edgeopt(shape, x, wt, b, dy):
    N, cin, h, w, cout, k, s, p, g, need_dx = shape
    dw, db = np.zeros_like(wt), np.zeros_like(b)
    e_f = bench(lambda: _core.conv.conv2d_forward(x, wt, b, (s, s), (p, p), g))
    e_b = bench(lambda: _core.conv.conv2d_backward(dy, x, wt, dw, db, (s, s), (p, p), g, need_dx))
    return e_f, e_b


def time_torch(shape, x, wt, b, dy):
    N, cin, h, w, cout, k, s, p, g, need_dx = shape
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, wt, b, dy))
    with torch.no_grad():
        t_f = bench(lambda: torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g))
        mask = [need_dx, True, True]
        t_b = bench(lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [cout], [s, s], [p, p], [1, 1], False, [0, 0], g, mask))
    return t_f, t_b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--net", default="all", choices=["resnet20", "mobilenetv1", "mobilenetv2", "vgg11", "all"])
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.thread_time if args.threads == 1 else time.perf_counter
    eo.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    nets = {"resnet20": resnet20_conv_shapes(), "mobilenetv1": mobilenetv1_conv_shapes(),
            "mobilenetv2": mobilenetv2_conv_shapes(), "vgg11": vgg11_conv_shapes()}
    print(f"threads={args.threads} isa={_core.runtime.active_isa()} torch={torch.__version__} "
          f"clock={'thread CPU time' if args.threads == 1 else 'wall'}")
    print("ratio = torch time / edgeopt time (> 1: edgeopt faster)")
    for name, shapes in nets.items():
        if args.net not in ("all", name):
            continue
        print(f"\n{name}")
        print(f"{'N':>4} {'Cin':>4} {'HxW':>7} {'Cout':>4} {'k':>2} {'s':>2} {'g':>4} {'#':>2} | "
              f"{'eo fwd ms':>9} {'torch':>7} {'ratio':>5} | {'eo bwd ms':>9} {'torch':>7} {'ratio':>5}")
        # Each library in its own phase: idle TBB workers and torch's OpenMP workers would
        # otherwise spin against each other on 2 cores and distort both timings.
        inputs = {shape: make_inputs(shape, rng) for shape in shapes}
        eo_t = {shape: time_edgeopt(shape, *inputs[shape]) for shape in shapes}
        time.sleep(0.5)
        torch_t = {shape: time_torch(shape, *inputs[shape]) for shape in shapes}
        time.sleep(0.5)
        tot = np.zeros(4)
        for shape, count in shapes.items():
            N, cin, h, w, cout, k, s, p, g, _ = shape
            r = np.array(eo_t[shape] + torch_t[shape])
            tot += count * r
            e_f, e_b, t_f, t_b = r * 1e3
            print(f"{N:4d} {cin:4d} {h:3d}x{w:<3d} {cout:4d} {k:2d} {s:2d} {g:4d} {count:2d} | "
                  f"{e_f:9.3f} {t_f:7.3f} {t_f / e_f:5.2f} | {e_b:9.3f} {t_b:7.3f} {t_b / e_b:5.2f}")
        e_f, e_b, t_f, t_b = tot * 1e3
        print(f"total (weighted by count): fwd eo {e_f:.1f} ms torch {t_f:.1f} ms ratio {t_f / e_f:.2f}; "
              f"bwd eo {e_b:.1f} ms torch {t_b:.1f} ms ratio {t_b / e_b:.2f}; "
              f"fwd+bwd ratio {(t_f + t_b) / (e_f + e_b):.2f}")


if __name__ == "__main__":
    main()

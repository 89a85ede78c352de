"""One training step (forward + backward + SGD) per zoo model, 3x32x32 inputs: edgeopt against
PyTorch CPU, same thread count, same machine, one run. Prints images/s and the ratio
edgeopt / PyTorch per model. Batch: 128 for resnet / vgg, 64 for the MobileNets (--batch
overrides). The PyTorch twin of resnet20 is written by hand (torch_twins.resnet_cifar); every
other model's twin is built from its traced graph (torch_twins.GraphTwin: same ops, weights and
shapes).

    PYTHONPATH=python:benchmarks python benchmarks/bench_train_step.py [--threads 1] [--steps 10]
        [--models resnet20 mobilenet_v2 ...] [--profile]

At --threads 1 the clock is the process's CPU time (neither library runs worker threads then, and
CPU time leaves out the time spent waiting for a core taken by other work); otherwise wall time.
Min and median over the measured steps are printed (noise only adds time); with several threads
the ratio is sensitive to load (PyTorch's OpenMP threads spin and
degrade badly when a core is taken), so compare at --threads 1 first. --profile adds a breakdown
of one edgeopt step by layer kind and direction (leaf modules timed around forward/backward) next
to PyTorch's per-operator profile of the same step.
"""
import argparse
import platform
import time
from collections import defaultdict

import numpy as np
import torch

import edgeopt as eo
from torch_twins import GraphTwin, resnet_cifar


CLOCK = time.perf_counter


def time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = CLOCK()
        step()
        times.append(CLOCK() - t)
    return float(np.min(times)), float(np.median(times))


def instrument(model, totals):
    """Wraps forward/backward of every leaf module to add its time to totals[(kind, direction)]."""
    def wrap(m, name, key):
        fn = getattr(m, name)

        def timed(*args, **kwargs):
            t = CLOCK()
            out = fn(*args, **kwargs)
            totals[key] += CLOCK() - t
            return out
        m.__dict__[name] = timed

    for _, m in model.named_modules():
        if any(True for _ in m.children()):
            continue
        kind = type(m).__name__
        if kind == "Conv2d":
            kind += f" {m.kernel_size[0]}x{m.kernel_size[1]}/{m.stride[0]} {m.in_channels}->{m.out_channels}"
        wrap(m, "forward", (kind, "fwd"))
        wrap(m, "backward", (kind, "bwd"))


def profile_edgeopt(model, step, reps):
    totals = defaultdict(float)
    instrument(model, totals)
    best, best_t = None, float("inf")
    for _ in range(reps):
        totals.clear()
        t = CLOCK()
        step()
        total = CLOCK() - t
        if total < best_t:
            best, best_t = dict(totals), total
    print(f"\nedgeopt step breakdown (best of {reps}, {1e3 * best_t:.1f} ms):")
    for (kind, d), v in sorted(best.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:28s} {d}  {1e3 * v:8.2f} ms  {100 * v / best_t:5.1f} %")
    rest = best_t - sum(best.values())
    print(f"  {'other (add, loss, SGD, glue)':28s}      {1e3 * rest:8.2f} ms  {100 * rest / best_t:5.1f} %")


def profile_torch(step):
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print("\nPyTorch step, top operators by self time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


MODELS = ["resnet20", "vgg11", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]


def bench_model(name, a, rng):
    batch = a.batch or (64 if name.startswith("mobilenet") else 128)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    model = eo.models.create(name, num_classes=10, in_channels=3)
    model.train()
    opt = eo.optim.SGD(list(model.named_parameters()), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def eo_step():
        opt.zero_grad()
        logits = model(x)
        _, dlogits = eo.nn.functional.cross_entropy(logits, y)
        model.backward(dlogits)
        opt.step()

    tm = resnet_cifar(20) if name == "resnet20" else GraphTwin(model, (1, 3, 32, 32))
    tm.train()
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(tx), ty)
        loss.backward()
        topt.step()

    # Each library in its own phase (idle TBB workers and OpenMP workers would spin against each other).
    t_eo = t_pt = None
    if a.only != "torch":
        t_eo = time_steps(eo_step, a.warmup, a.steps)
        print(f"{name:20s} edgeopt  {batch / t_eo[0]:8.1f} img/s  step min {1e3 * t_eo[0]:.1f} ms  "
              f"median {1e3 * t_eo[1]:.1f} ms", flush=True)
    if a.only != "edgeopt":
        time.sleep(0.3)
        t_pt = time_steps(torch_step, a.warmup, a.steps)
        print(f"{name:20s} PyTorch  {batch / t_pt[0]:8.1f} img/s  step min {1e3 * t_pt[0]:.1f} ms  "
              f"median {1e3 * t_pt[1]:.1f} ms", flush=True)
    if t_eo and t_pt:
        print(f"{name} train step, batch {batch}: ratio edgeopt/PyTorch (speed) "
              f"min {t_pt[0] / t_eo[0]:.2f}  median {t_pt[1] / t_eo[1]:.2f}", flush=True)
    if a.profile:
        if a.only != "torch":
            profile_edgeopt(model, eo_step, max(3, a.steps // 2))
        if a.only != "edgeopt":
            profile_torch(torch_step)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=None, help="default: 128 (resnet, vgg), 64 (MobileNets)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["resnet20"], choices=MODELS)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", choices=["edgeopt", "torch"], default=None)
    a = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if a.threads == 1 else time.perf_counter
    eo.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    print(f"CPU: {platform.processor() or platform.machine()}  ISA path: {eo._core.runtime.active_isa()}  "
          f"threads: {a.threads}  torch {torch.__version__}  clock: "
          f"{'process CPU time' if a.threads == 1 else 'wall'}")
    rng = np.random.default_rng(0)
    for name in a.models:
        bench_model(name, a, rng)


if __name__ == "__main__":
    main()
